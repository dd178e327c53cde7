// SMS helpers of the page: the segment counter (as services/sms/segments.py counts) and a
// circuit breaker that spares the gateway while the provider is down.

const GSM_BASIC = new Set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà");
const GSM_EXTENSION = new Set("\f^{}\\[~]|€");
const LIMITS = { "GSM-7": [160, 153], "UCS-2": [70, 67] };

/** {encoding, segments, units}: GSM-7 160 / 153 per part, extension characters count 2; else UCS-2 70 / 67. */
export function segments(body) {
  const chars = [...body];
  const encoding = chars.every((c) => GSM_BASIC.has(c) || GSM_EXTENSION.has(c)) ? "GSM-7" : "UCS-2";
  const widths = chars.map((c) => (encoding === "GSM-7" ? (GSM_EXTENSION.has(c) ? 2 : 1) : c.length));
  const [single, perPart] = LIMITS[encoding];
  const units = widths.reduce((a, b) => a + b, 0);
  if (units <= single) return { encoding, segments: 1, units };
  let parts = 1, room = perPart;
  for (const w of widths) { // a character never straddles two parts
    if (w > room) { parts++; room = perPart; }
    room -= w;
  }
  return { encoding, segments: parts, units };
}

/**
 * closed ──(N provider-down answers in a row)──► open ──(cool-down)──► half_open ──(sent)──► closed
 *                                                  ▲                       │ (down again)
 *                                                  └───────────────────────┘
 * While open, Send SMS is refused in the page: nothing reaches the gateway.
 */
export class SmsBreaker {
  constructor({ threshold = 3, cooldownMs = 30000, onChange = () => {} } = {}) {
    Object.assign(this, { threshold, cooldownMs, onChange });
    this.failures = 0; this.state = "closed"; this.openedAt = 0; this.timer = null;
  }

  allows() { return this.state !== "open"; }

  remainingMs() { return this.state === "open" ? Math.max(0, this.openedAt + this.cooldownMs - Date.now()) : 0; }

  providerDown() {
    this.failures++;
    if (this.state === "half_open" || this.failures >= this.threshold) this._to("open");
  }

  providerUp() { this.failures = 0; if (this.state !== "closed") this._to("closed"); }

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
