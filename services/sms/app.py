"""Wiring of the SMS service."""
from datetime import timedelta
from pathlib import Path

from pydantic import Field

from services.sms.handlers import ConfirmationSender, Queries, register
from services.sms.provider import Provider, ProviderSettings
from services.sms.sending import Sender
from shared import lead_directory, logging
from shared.breaker import BreakerConfig, CircuitBreaker, State
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
    # Test hook: SIGKILL right after the provider accepted a message, before it is recorded.
    fault_crash_after_provider: bool = False


def breaker(settings: SmsSettings) -> CircuitBreaker:
    """Per instance: each SMS instance judges the provider by its own calls (see README)."""
    config = BreakerConfig(window=settings.breaker_window, min_calls=settings.breaker_min_calls,
                           failure_rate=settings.breaker_failure_rate,
                           slow_call_duration=settings.breaker_slow_call_seconds,
                           slow_call_rate=settings.breaker_slow_call_rate,
                           wait_open=settings.breaker_wait_open_seconds, half_open_calls=settings.breaker_half_open_calls)

    def changed(old: State, new: State) -> None:
        log.warning("breaker.state_changed", old=str(old), new=str(new))

    return CircuitBreaker(config, on_change=changed)


def build(settings: SmsSettings) -> Service:
    service = Service(SERVICE, settings, [lead_directory.MIGRATIONS, Path(__file__).parent / "migrations"])
    provider, directory = Provider(settings), lead_directory.Directory(service.broker)
    callback = f"{settings.public_url}/webhooks/twilio/status" if settings.public_url else None
    circuit = breaker(settings)
    # How long a started attempt may still be answered: past it, ask the provider before sending again.
    lease = timedelta(seconds=settings.twilio_timeout + 5)
    sender = Sender(directory, provider, circuit, callback, lease, settings.fault_crash_after_provider)
    confirmation = ConfirmationSender(directory, provider, circuit, callback, lease)
    register(service, sender, confirmation, Queries(directory))
    service.health(lambda: {"breaker": str(circuit.state)})
    service.on_close(provider.close)
    service.finish_routing()
    service.document_events(EVENTS)
    return service


SETTINGS = SmsSettings
