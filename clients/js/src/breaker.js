// A circuit breaker that spares the gateway while the SMS provider is down (the console's, now the SDK's).
//
// closed ──(N provider-down answers in a row)──► open ──(cool-down)──► half_open ──(sent)──► closed
//                                                  ▲                       │ (down again)
//                                                  └───────────────────────┘
// While open, a send_sms press is refused in the page (SmsPaused): nothing reaches the gateway.
// "Provider down": an SMS accepted but queued (not sent), or a final 5xx; "up": an SMS sent.

export class SmsPaused extends Error {
  constructor(remainingMs) {
    super(`the SMS provider is down: sending is paused for ${Math.ceil(remainingMs / 1000)} s`);
    this.name = "SmsPaused"; this.remainingMs = remainingMs;
  }
}

export class SmsBreaker {
  constructor({ threshold = 3, cooldownMs = 30000, onChange = () => {} } = {}) {
    Object.assign(this, { threshold, cooldownMs, onChange });
    this.failures = 0; this.state = "closed"; this.openedAt = 0; this.timer = null;
  }

  allows() { return this.state !== "open"; }

  remainingMs() { return this.state === "open" ? Math.max(0, this.openedAt + this.cooldownMs - Date.now()) : 0; }

  /** What an answer to send_sms says of the provider. */
  observe(status, body) {
    const sms = body && typeof body === "object" ? body.sms : null;
    if (sms && sms.status === "sent") this.providerUp();
    else if ((sms && sms.status === "queued") || status >= 500) this.providerDown();
  }

  providerDown() {
    this.failures++;
    if (this.state === "half_open" || this.failures >= this.threshold) this._to("open");
  }

  providerUp() { this.failures = 0; if (this.state !== "closed") this._to("closed"); }

  stop() { clearTimeout(this.timer); }

  _to(state) {
    this.state = state;
    clearTimeout(this.timer);
    if (state === "open") {
      this.openedAt = Date.now();
      this.timer = setTimeout(() => this._to("half_open"), this.cooldownMs);
    }
    this.onChange(state);
  }
}
