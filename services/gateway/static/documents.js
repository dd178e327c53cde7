// The lead panel's documents: the files attached to a lead, uploaded, downloaded and deleted.
//
//   upload:   the file ──multipart (part `file`), its own Idempotency-Key, retried (the SDK's withRetry)──► 201 {document}
//             (a 202 is followed to its answer). Never put in the offline queue: a file chosen in the
//             page cannot be kept for later; offline, the page says an upload needs a connection.
//             A second press after a failure is a new key, which is harmless: the same bytes twice
//             on one lead are one document.
//   download: GET its content (the table's download_document) with the token ──► a blob ──► saved through an object URL
//   delete:   a press like any other (main.js's press: the client's queue, offline too)
import { Unauthorized, Undelivered, follow, newKey, withRetry } from "/sdk/index.js";
import * as table from "./table.js";
import { $, el, notify, refill, when } from "./view.js";
import { fileKind, fileSize, outcome, queuedWords } from "./words.js";

export class Documents {
  /** ctx: {press(button, fields, label, leadIds, extra), read(name, fields), client(), openId(), nameOf(id), entries(), token(),
   * expired(why)} */
  constructor(ctx) {
    this.ctx = ctx; this.items = []; this.timer = null; this.uploading = 0;
  }

  bind() { $("#document-form").addEventListener("submit", (e) => this.upload(e)); }

  reset() { this.items = []; this.render(); }

  reloadSoon() { // attached, then the answer's own reload: one read for a burst
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { if (this.ctx.openId()) this.load(this.ctx.openId()); }, 150);
  }

  async load(leadId) {
    const body = await this.ctx.read("lead_documents", { leadId });
    if (body && this.ctx.openId() === leadId) { this.items = body.documents; this.render(); }
  }

  render() {
    const busy = new Set(this.ctx.entries().map((e) => e.documentId).filter(Boolean));
    refill($("#documents"), [...this.items].reverse().map((d) => this.row(d, busy.has(d.id)))); // newest first
    const send = $("#document-send");
    send.textContent = this.uploading ? "Uploading…" : "Upload";
    send.setAttribute("aria-busy", String(this.uploading > 0));
  }

  row(d, pending) {
    const data = { documentId: d.id };
    return el("li", { testid: "document-row", dataset: { documentId: d.id, pending: pending ? "1" : "0" } },
      el("div", { class: "top" }, el("strong", { class: "body", textContent: d.filename }),
        pending ? el("span", { class: "pending-mark", textContent: "pending" }) : null),
      el("div", { class: "meta", textContent: [fileKind(d.content_type), fileSize(d.size), when(d.created_at),
        d.created_by ? `by ${d.created_by}` : ""].filter(Boolean).join(" · ") }),
      el("div", { class: "line actions" },
        el("button", { type: "button", class: "small", testid: "document-download", dataset: data, textContent: "Download",
          "aria-label": `download ${d.filename}`, onclick: () => this.download(d) }),
        el("button", { type: "button", class: "small", testid: "document-delete", dataset: data, textContent: "Delete",
          disabled: pending, "aria-label": `delete ${d.filename}`, onclick: () => this.remove(d) })));
  }

  async upload(e) {
    e.preventDefault();
    const leadId = this.ctx.openId(), input = $("#document-file"), file = input.files && input.files[0];
    if (!leadId) return;
    if (!file) return void notify("error", "Choose the file to attach first.");
    if (!navigator.onLine) {
      return void notify("error", `${file.name} was not uploaded: an upload needs a connection (files are not kept in the browser). Upload it again when you are back online.`);
    }
    const entry = { button: "attach_document", key: newKey(), leadIds: [leadId], filename: file.name,
      label: `Uploading ${file.name} for ${this.ctx.nameOf(leadId)}` };
    const handle = notify("pending", `${entry.label} (${fileSize(file.size)})…`);
    const form = new FormData();
    form.append("file", file, file.name);
    this.uploading++; this.render();
    try {
      await table.ready();
      const { method, path } = table.press(entry.button, { leadId });
      let answer = await withRetry(method, path, { token: this.ctx.token(), body: form, key: entry.key });
      if (answer.status === 202 && answer.headers.get("Location")) {
        handle.update("pending", queuedWords(entry, "accepted"));
        const token = this.ctx.token();
        answer = await follow(answer.headers.get("Location"), token, { stopped: () => this.ctx.token() !== token });
      }
      handle.update(...outcome(entry, answer, this.ctx.nameOf));
      const made = answer.status >= 200 && answer.status < 300 && answer.body && answer.body.document;
      if (made && input.files[0] === file) input.value = "";
      if (made && this.ctx.openId() === leadId && !this.items.some((d) => d.id === made.id)) this.items.push(made);
    } catch (err) {
      if (err instanceof Unauthorized) { handle.remove(); return void this.ctx.expired(err.message); }
      if (!(err instanceof Undelivered)) throw err;
      handle.update("error", `${file.name} was not uploaded: ${navigator.onLine ? "the server cannot be reached" : "the connection is gone"}. An upload needs a connection; press Upload again when it is back.`);
    } finally {
      this.uploading--; this.render();
    }
  }

  async download(d) {
    try {
      await table.ready();
      const client = this.ctx.client();
      if (!client) return;
      const got = await client.blob(table.path("download_document", { documentId: d.id }));
      if (got.status !== 200) {
        return void notify("error", got.status === 404 ? `${d.filename} no longer exists.`
          : `${d.filename} could not be downloaded (${(got.body && got.body.title) || "error " + got.status}).`);
      }
      const url = URL.createObjectURL(got.blob);
      const link = el("a", { href: url, download: d.filename, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000); // the download has its bytes long before
    } catch (err) {
      if (err instanceof Unauthorized) return void this.ctx.expired(err.message);
      notify("error", `${d.filename} could not be downloaded: the server cannot be reached. Try again in a moment.`);
    }
  }

  remove(d) {
    this.ctx.press("delete_document", { documentId: d.id }, `Deleting ${d.filename}`, [d.lead_id],
      { documentId: d.id, filename: d.filename });
  }

  /** After a press's answer: a deleted document leaves the list at once (the event says so too). */
  answered(entry, answer) {
    if (entry.button !== "delete_document" || answer.status < 200 || answer.status >= 300) return;
    this.items = this.items.filter((d) => d.id !== entry.documentId);
    this.render();
  }
}
