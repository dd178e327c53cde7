"""One campaign target's SMS: a `Sender` (one SMS per command, opt-out checked before every attempt) inside
checks of its own, whose outcome is written on the target in the same transaction as the SMS row and the
inbox row.

    sms.send_campaign_sms {campaignId, leadId}, message id uuid5(campaign, lead) (campaign_domain.send_id)
      target unknown ──► refused 404; a message id not the target's own ──► refused 422 (nothing sent)
      campaign cancelled before any attempt ──► skipped
      Sender.perform ─► sent / failed / opted out (its refusals too: opted-out or unknown lead ─► skipped)
      record: the SMS row, the inbox row and the target's outcome, one transaction
      parked (retries exhausted, e.g. a long outage): the target waits again, never failed for it
"""

from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from services.sms import campaign_domain as rules
from services.sms import campaign_repository as campaigns
from services.sms import clock, domain, repository
from services.sms.sending import Result, Sender
from shared.contracts.campaigns import CampaignStatus, SendCampaignSms
from shared.contracts.envelope import Event
from shared.messages import Effect, Meta, Outcome
from shared.problems import Rejected, invalid, not_found


@dataclass(frozen=True)
class Refused:
    """The send was refused before the provider was called (opted out, unknown lead, cancelled campaign).
    `settles`: the refusal is the target's outcome (not so for a command that is not the target's own)."""

    refusal: Rejected
    settles: bool = True


async def campaign_text(conn: asyncpg.Connection, cmd: SendCampaignSms, meta: Meta, lead: asyncpg.Record) -> str:
    """The campaign's template, filled from the lead (the `compose` of a campaign target's `Sender`)."""
    target = await campaigns.for_send(conn, meta.org_id, cmd.campaignId, cmd.leadId)
    template = await repository.template(conn, meta.org_id, target["template_id"]) if target else None
    if template is None:
        raise not_found("template of campaign", cmd.campaignId)
    return domain.render(template["body"], lead["name"], lead["phone"])


class CampaignSender(Effect[SendCampaignSms, Result | Refused]):
    """The `Effect` behind `sms.send_campaign_sms`: `sender` (whose text is `campaign_text`) sends, this checks
    the target before and settles it after. `again_after`: how long a parked send waits to go again."""

    def __init__(self, sender: Sender[SendCampaignSms], again_after: timedelta):
        self.sender, self.again_after = sender, again_after

    async def perform(self, pool: asyncpg.Pool, cmd: SendCampaignSms, meta: Meta) -> Result | Refused:
        try:
            async with pool.acquire() as conn:
                target = await campaigns.for_send(conn, meta.org_id, cmd.campaignId, cmd.leadId)
                if target is None:
                    raise not_found("campaign target", f"{cmd.campaignId}/{cmd.leadId}")
                if target["command_id"] != meta.message_id:  # one message id per target: one SMS, never two
                    return Refused(
                        invalid(f"message id {meta.message_id} is not the send of this campaign target"), settles=False
                    )
                cancelled = target["status"] == CampaignStatus.cancelled
                if cancelled and await repository.by_command(conn, meta.org_id, meta.message_id) is None:
                    raise rules.closed(cmd.campaignId, CampaignStatus.cancelled, "sent")  # nothing attempted: skip
            return await self.sender.perform(pool, cmd, meta)
        except Rejected as refusal:  # recorded with the target's outcome, not on its own
            return Refused(refusal)

    async def record(
        self, conn: asyncpg.Connection, cmd: SendCampaignSms, meta: Meta, result: Result | Refused
    ) -> Outcome:
        if isinstance(result, Refused):
            if result.settles:
                state, why = rules.refused_outcome(result.refusal.body)
                await campaigns.settle(conn, meta.org_id, cmd.campaignId, cmd.leadId, state, None, why)
            return Outcome(result.refusal.reply())
        outcome = await self.sender.record(conn, cmd, meta, result)
        state, reason = rules.sent_outcome(result.outcome, result.row["status"], result.reason)
        await campaigns.settle(conn, meta.org_id, cmd.campaignId, cmd.leadId, state, result.row["id"], reason)
        return outcome

    async def parked(self, conn: asyncpg.Connection, meta: Meta) -> list[Event]:
        """Given up after its retries (the provider kept failing): the SMS row stays as it is (queued, or an
        attempt whose outcome the next publication will ask the provider about) and the target waits again.
        A provider outage pauses a campaign; it never fails it."""
        row = await repository.by_command(conn, meta.org_id, meta.message_id)
        if row is not None and row["status"] in domain.FINAL:
            return []  # its outcome is known: recorded by the delivery that got it
        await campaigns.back_to_waiting(conn, meta.message_id, clock.now() + self.again_after)
        return []
