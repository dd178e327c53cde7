"""Documents (the documents service): files attached to leads, by claim check.

The bytes never travel over the broker: the gateway stores an upload in the blob store
first (named by its SHA-256: shared/blobs.py) and sends `documents.attach` with the hash,
size, type and name. The same bytes attached twice to one lead are one document; a blob
that no document refers to is collected after a grace period.
"""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from shared.contracts.declare import Button, Read
from shared.contracts.envelope import Command, EventData, Query
from shared.contracts.leads import LeadId
from shared.problems import NotFound

SERVICE = "documents"
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


# Commands ------------------------------------------------------------------
class AttachDocument(Command):
    """Sent by the gateway once the upload is in the blob store (multipart: the `file` part)."""

    ROUTING_KEY = "documents.attach"
    INTERNAL = True  # the claim check is the gateway's word that these bytes were uploaded for this organisation
    leadId: LeadId
    sha256: Sha256
    size: int = Field(ge=0)
    contentType: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    filename: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class DeleteDocument(Command):
    ROUTING_KEY = "documents.delete"
    documentId: Id


# Queries -------------------------------------------------------------------
class GetDocument(Query):
    ROUTING_KEY = "documents.query.get"
    documentId: Id


class LeadDocuments(Query):
    ROUTING_KEY = "documents.query.of_lead"
    leadId: LeadId


# Views ---------------------------------------------------------------------
class DocumentView(BaseModel):
    id: str
    lead_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    created_by: str


class DocumentReply(BaseModel):
    document: DocumentView


class DocumentList(BaseModel):
    documents: list[DocumentView]


# Events --------------------------------------------------------------------
class DocumentAttached(EventData):
    """data of `documents.attached`"""

    TYPE = "documents.attached"
    documentId: str
    leadId: str
    filename: str
    contentType: str
    size: int
    sha256: str
    by: str


class DocumentDeleted(EventData):
    """data of `documents.deleted`"""

    TYPE = "documents.deleted"
    documentId: str
    leadId: str
    by: str


EVENTS: tuple[type[EventData], ...] = (DocumentAttached, DocumentDeleted)


BUTTONS = (
    Button(
        "attach_document",
        "/api/leads/{leadId}/documents",
        AttachDocument,
        DocumentReply,
        "Attach a file to a lead (multipart/form-data, part `file`; the same bytes twice are one document)",
        status=201,
        upload="file",
        refusals=(NotFound,),
        events=(DocumentAttached,),
    ),
    Button(
        "delete_document",
        "/api/documents/{documentId}/delete",
        DeleteDocument,
        DocumentReply,
        "Delete a document (also DELETE /api/documents/{documentId})",
        cli="document delete documentId",
        refusals=(NotFound,),
        events=(DocumentDeleted,),
    ),
)
READS = (
    Read(
        "get_document",
        "/api/documents/{documentId}",
        GetDocument,
        DocumentReply,
        "A document's metadata (its bytes: /api/documents/{documentId}/content)",
        cli="document get documentId",
    ),
    Read(
        "lead_documents",
        "/api/leads/{leadId}/documents",
        LeadDocuments,
        DocumentList,
        "A lead's documents",
        cli="document list leadId",
    ),
)
