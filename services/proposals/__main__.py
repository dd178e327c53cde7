from services.proposals.app import ProposalsSettings, build
from shared.service import run

if __name__ == "__main__":
    run(ProposalsSettings, build)
