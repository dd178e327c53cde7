// Money on the page: integer minor units (cents) from and to the API, never a float in between.
//
// Shown:  amount_minor ──(digits of the currency, string arithmetic)──► "1234.50" ──Intl.NumberFormat──► "$1,234.50"
// Typed:  "1,234.50" / "1234,5" / "1 234.50" ──(string arithmetic)──► 123450

const digitsCache = new Map();

/** How many minor digits the currency has (USD 2, JPY 0, BHD 3), as Intl knows it; 2 when unknown. */
export function minorDigits(currency) {
  if (!digitsCache.has(currency)) {
    let digits = 2;
    try { digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits; } catch { /* not a currency */ }
    digitsCache.set(currency, digits);
  }
  return digitsCache.get(currency);
}

/** 123450, "USD" -> "1234.50" (a decimal string, exact for any safe integer). */
export function toDecimal(minor, currency) {
  const digits = minorDigits(currency), negative = minor < 0;
  const s = String(Math.abs(Math.trunc(minor))).padStart(digits + 1, "0");
  const whole = s.slice(0, s.length - digits), frac = s.slice(s.length - digits);
  return (negative ? "-" : "") + whole + (digits ? "." + frac : "");
}

/** 123450, "USD" -> "$1,234.50" in the browser's language (Intl formats the decimal string exactly). */
export function formatMoney(minor, currency) {
  if (!Number.isInteger(minor)) return "";
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(toDecimal(minor, currency));
  } catch { return `${toDecimal(minor, currency)} ${currency}`; }
}

/**
 * What the agent typed, in minor units, or null when it is not an amount of that currency.
 * The last "." or "," is the decimal point when at most `digits` digits follow it; other separators
 * must group thousands ("1,234.50", "1.234,50", "1 234,50"). No float is ever made.
 */
export function parseMinor(text, currency) {
  const digits = minorDigits(currency);
  const s = String(text || "").trim().replace(/[\s\u00a0\u202f'’_]/g, "");
  if (!/^\d[\d.,]*$/.test(s) || /[.,]$/.test(s)) return null;
  const parts = s.split(/[.,]/), seps = s.replace(/\d/g, "");
  let groups = parts, frac = "";
  if (parts.length > 1) {
    const last = parts[parts.length - 1], lastSep = seps[seps.length - 1];
    if (digits > 0 && last.length <= digits && !seps.slice(0, -1).includes(lastSep)) {
      frac = last; groups = parts.slice(0, -1);
    }
  }
  if (groups.length > 1) { // grouped thousands: one separator, groups of three after the first
    const groupSeps = new Set(seps.slice(0, groups.length - 1));
    if (groupSeps.size !== 1 || groups[0].length > 3 || groups.slice(1).some((g) => g.length !== 3)) return null;
  }
  const text10 = (groups.join("") + frac.padEnd(digits, "0")).replace(/^0+(?=\d)/, "");
  if (text10.length > 15) return null; // beyond 10^15: not an amount a person types
  const minor = Number(text10); // an integer written in at most 15 digits: exact
  return Number.isSafeInteger(minor) ? minor : null;
}
