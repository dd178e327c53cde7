"""Wiring of the SMS service."""

from datetime import timedelta
from pathlib import Path

from pydantic import Field

from services.sms import campaigns, clock
from services.sms.campaign_sending import CampaignSender, campaign_text
from services.sms.dispatcher import SWEEP_EVERY, TICK, WATCH_EVERY, Dispatcher
from services.sms.handlers import Queries, confirmation_text, register
from services.sms.provider import Provider, ProviderSettings
from services.sms.sending import Outbound, Sender, written
from shared import lead_directory, logging, metrics
from shared.breaker import BreakerConfig, CircuitBreaker, State
from shared.contracts import campaigns as campaign_contracts
from shared.contracts.sms import EVENTS, SERVICE
from shared.service import Service
from shared.settings import ServiceSettings

log = logging.get("sms")


class SmsSettings(ServiceSettings, ProviderSettings):
    # Where the provider posts status callbacks: the gateway's public URL. Empty: no callbacks.
    public_url: str = Field("http://127.0.0.1:8080", pattern=r"^(https?://.+)?$")
    breaker_window: int = Field(20, ge=1)
    breaker_min_calls: int = Field(10, ge=1)
    breaker_failure_rate: float = Field(50, gt=0, le=100)
    breaker_slow_call_seconds: float | None = Field(None, gt=0)
    breaker_slow_call_rate: float = Field(100, gt=0, le=100)
    breaker_wait_open_seconds: float = Field(30, ge=0)
    breaker_half_open_calls: int = Field(3, ge=1)
    # Campaigns: sends a second per organisation (shared by every instance), and how long a published send
    # may go unseen by the SMS side before it is published again (a crash between commit and publish).
    sms_campaign_rate_per_second: float = Field(5, gt=0, le=10_000)
    sms_campaign_sweep_seconds: float = Field(30, gt=0)
    # Test hook: SIGKILL right after the provider accepted a message, before it is recorded.
    fault_crash_after_provider: bool = False
    # Test hook: SIGKILL after the campaign dispatcher committed targets as sending, before publishing them.
    fault_crash_after_dispatch: bool = False
    # Test hook: the campaigns' clock runs this many seconds from the wall clock (services/sms/clock.py).
    campaign_clock_offset_seconds: float = 0

    def production_problems(self) -> dict[str, str]:
        return {**super().production_problems(), **self.twilio_problems()}


BREAKER_GAUGE = {State.CLOSED: 0, State.HALF_OPEN: 1, State.OPEN: 2}  # crm_breaker_state (shared/metrics.py)


def breaker(settings: SmsSettings) -> CircuitBreaker:
    """Per instance: each SMS instance judges the provider by its own calls (see README)."""
    config = BreakerConfig(
        window=settings.breaker_window,
        min_calls=settings.breaker_min_calls,
        failure_rate=settings.breaker_failure_rate,
        slow_call_duration=settings.breaker_slow_call_seconds,
        slow_call_rate=settings.breaker_slow_call_rate,
        wait_open=settings.breaker_wait_open_seconds,
        half_open_calls=settings.breaker_half_open_calls,
    )

    def changed(old: State, new: State) -> None:
        log.warning("breaker.state_changed", old=str(old), new=str(new))
        metrics.BREAKER_OPEN.labels("sms").set(BREAKER_GAUGE[new])

    return CircuitBreaker(config, on_change=changed)


def build(settings: SmsSettings) -> Service:
    service = Service(SERVICE, settings, [lead_directory.MIGRATIONS, Path(__file__).parent / "migrations"])
    provider, directory = Provider(settings), lead_directory.of(service)
    callback = f"{settings.public_url}/webhooks/twilio/status" if settings.public_url else None
    circuit = breaker(settings)
    # How long a started attempt may still be answered: past it, ask the provider before sending again.
    lease = timedelta(seconds=settings.twilio_timeout + 5)
    out = Outbound(directory, provider, circuit, callback, lease)
    sender = Sender(out, written, settings.fault_crash_after_provider)
    register(service, sender, Sender(out, confirmation_text), Queries(directory))
    # A campaign send given up after its retries waits as long as the longest retry before it goes again.
    campaign_sender = CampaignSender(
        Sender(out, campaign_text), again_after=timedelta(seconds=max(settings.retry_delays, default=1))
    )
    campaigns.register(service, directory, campaign_sender)
    clock.shift(settings.campaign_clock_offset_seconds)
    dispatcher = Dispatcher(
        lambda: service.pool,
        service.broker,
        service.own_user,
        circuit,
        settings.sms_campaign_rate_per_second,
        timedelta(seconds=settings.sms_campaign_sweep_seconds),
        settings.fault_crash_after_dispatch,
    )
    service.loop("campaign_dispatch", dispatcher.dispatch, TICK)
    service.loop("campaign_sweep", dispatcher.sweep, SWEEP_EVERY)
    service.loop("campaign_watch", dispatcher.watch, WATCH_EVERY)
    service.health(lambda: {"breaker": str(circuit.state)})
    service.on_close(provider.close)
    service.finish_routing()
    service.document_events(EVENTS + campaign_contracts.EVENTS)
    return service


SETTINGS = SmsSettings
