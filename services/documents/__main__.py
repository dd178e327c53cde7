from services.documents.app import DocumentsSettings, build
from shared.service import run

if __name__ == "__main__":
    run(DocumentsSettings, build)
