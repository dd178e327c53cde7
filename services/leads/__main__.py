from services.leads.app import LeadsSettings, build
from shared.service import run

if __name__ == "__main__":
    run(LeadsSettings, build)
