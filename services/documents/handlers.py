"""Documents subscribers: decode, check, persist, answer.

The bytes are in the blob store already (the gateway put them there before it sent the
command); the command names them by hash. Attaching touches the blob before the document is
committed, so the collector (collector.py), which spares what was touched within its grace
period, never removes the bytes of a document being attached.
"""

from datetime import UTC, datetime
from uuid import uuid4

import asyncpg

from services.documents import repository
from shared import lead_directory
from shared.blobs import BlobStore
from shared.contracts.documents import (
    AttachDocument,
    DeleteDocument,
    DocumentAttached,
    DocumentDeleted,
    DocumentList,
    DocumentReply,
    DocumentView,
    GetDocument,
    LeadDocuments,
)
from shared.contracts.envelope import Reply
from shared.contracts.leads import LeadCreated
from shared.lead_directory import Directory
from shared.messages import Meta, Outcome, ok
from shared.problems import invalid, not_found
from shared.service import Service


class DocumentHandlers:
    def __init__(self, directory: Directory, blobs: BlobStore):
        self.directory, self.blobs = directory, blobs

    async def attach(self, conn: asyncpg.Connection, cmd: AttachDocument, meta: Meta) -> Outcome:
        if await self.directory.find(conn, meta.org_id, cmd.leadId) is None:
            raise not_found("lead", cmd.leadId)
        blob = await self.blobs.touch(cmd.sha256)
        if blob is None or blob.size != cmd.size:
            raise invalid(
                f"no upload of {cmd.size} bytes with sha256 {cmd.sha256} is in the blob store (uploads "
                "no document refers to are collected after a while): upload the file again",
                [{"field": "sha256", "message": "unknown upload"}],
            )
        row = await repository.insert(
            conn,
            uuid4(),
            meta.org_id,
            cmd.leadId,
            cmd.sha256,
            cmd.size,
            cmd.contentType,
            cmd.filename,
            datetime.now(UTC),
            meta.user_id,
        )
        if row is None:  # these bytes are attached to this lead already: that one document, no event
            known = await repository.live_of_hash(conn, meta.org_id, cmd.leadId, cmd.sha256)
            if known is None:  # deleted in the meantime: transient, the attach runs again
                raise RuntimeError("the document these bytes are attached as was deleted meanwhile")
            return Outcome(ok(DocumentReply(document=DocumentView(**known)), 201))
        document = DocumentView(**row)
        attached = DocumentAttached(
            documentId=document.id,
            leadId=document.lead_id,
            filename=document.filename,
            contentType=document.content_type,
            size=document.size,
            sha256=document.sha256,
            by=meta.user_id,
        )
        return Outcome(ok(DocumentReply(document=document), 201), [meta.event(attached)])

    async def delete(self, conn: asyncpg.Connection, cmd: DeleteDocument, meta: Meta) -> Outcome:
        """A soft delete: the row stays (who deleted it, when); its bytes go once nothing else refers to them."""
        row = await repository.get(conn, meta.org_id, cmd.documentId, lock=True)
        if row is None:
            raise not_found("document", cmd.documentId)
        if row["deleted_at"] is not None:  # deleted already: the same answer, no second event
            return Outcome(ok(DocumentReply(document=DocumentView(**row))))
        row = await repository.delete(conn, cmd.documentId, datetime.now(UTC), meta.user_id)
        deleted = DocumentDeleted(documentId=row["id"], leadId=row["lead_id"], by=meta.user_id)
        return Outcome(ok(DocumentReply(document=DocumentView(**row))), [meta.event(deleted)])

    # Queries -------------------------------------------------------------------
    async def get(self, conn: asyncpg.Connection, query: GetDocument, org: str) -> Reply:
        row = await repository.get(conn, org, query.documentId)
        if row is None or row["deleted_at"] is not None:
            raise not_found("document", query.documentId)
        return ok(DocumentReply(document=DocumentView(**row)))

    async def of_lead(self, conn: asyncpg.Connection, query: LeadDocuments, org: str) -> Reply:
        if await self.directory.find(conn, org, query.leadId) is None:
            raise not_found("lead", query.leadId)
        rows = await repository.of_lead(conn, org, query.leadId)
        return ok(DocumentList(documents=[DocumentView(**r) for r in rows]))


def register(service: Service, documents: DocumentHandlers) -> None:
    service.command(
        AttachDocument,
        documents.attach,
        "Attach an uploaded file (already in the blob store, named by its sha256) to a lead of the "
        "caller's organisation; the same bytes twice on one lead are one document. "
        "Emits documents.attached.",
    )
    service.command(
        DeleteDocument, documents.delete, "Delete a document (soft: kept with who and when). Emits documents.deleted."
    )
    service.event(
        LeadCreated, lead_directory.remember_created, "Learn of a new lead (the documents projection of leads)."
    )
    service.query(GetDocument, documents.get, "One document of the caller's organisation.")
    service.query(LeadDocuments, documents.of_lead, "A lead's documents, oldest first.")
