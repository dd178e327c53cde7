// SMS helper of the page: the segment counter (as services/sms/segments.py counts). The circuit breaker
// that spares the gateway while the provider is down is the SDK's (client.breaker, /sdk/breaker.js).

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
