"""Proposals subscribers (skeleton: the buttons are being added)."""
from shared import lead_directory
from shared.contracts.leads import LeadCreated
from shared.lead_directory import Directory
from shared.service import Service


def register(service: Service, directory: Directory) -> None:
    service.event(LeadCreated, lambda event: lead_directory.remember_created,
                  "Learn of a new lead (the proposals projection of leads).")
