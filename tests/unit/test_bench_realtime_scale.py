"""The realtime scale parts of `make bench` (bench/resume.py, bench/herd.py), on made-up inputs: the bytes the
bulk publisher writes, the order of what it publishes, what is read of /metrics, and the herd's figures."""

from pamqp import body, commands, frame, header

from bench import herd, metrics, publisher, report, traffic
from bench.screens import Arrival, Screen


def test_a_publish_is_the_bytes_pamqp_would_write() -> None:
    data = b'{"id": "e-1"}'
    expected = (
        frame.marshal(commands.Basic.Publish(exchange="events", routing_key="bench.scaled"), 1)
        + frame.marshal(
            header.ContentHeader(
                0,
                len(data),
                commands.Basic.Properties(headers={"x-org-id": "org-é"}, delivery_mode=2, message_id="e-1"),
            ),
            1,
        )
        + frame.marshal(body.ContentBody(data), 1)
    )
    assert publisher.message("events", "bench.scaled", data, "e-1", "org-é") == expected


def test_others_are_spread_between_own_events_and_the_last_one_is_own() -> None:
    own, others = traffic.of(["a"], 10), traffic.others(1000)
    events = traffic.interleave(own, others)
    assert len(events) == 1010 and events[-1] is own[-1]
    assert [e for e in events if e["org_id"] == "a"] == own
    assert [e for e in events if e["org_id"] != "a"] == others
    assert len({e["org_id"] for e in others}) == traffic.OTHER_ORGS


def test_records_read_by_source_from_two_scrapes() -> None:
    before = metrics.parse('# HELP x\ncrm_replay_records_total{source="log"} 5.0\ncrm_event_archive_position 9.0\n')
    after = metrics.parse(
        'crm_replay_records_total{source="log"} 7.0\ncrm_replay_records_total{source="archive"} 1000.0\n'
        'crm_replay_records_created{source="log"} 1.7e+09\ncrm_event_archive_position 12.0\n'
    )
    assert after[metrics.ARCHIVE_GAUGE] == 12.0
    assert metrics.read_by_source(before, after) == {"log": 2.0, "archive": 1000.0}
    assert metrics.read_by_source({}, metrics.parse("crm_event_log_position 3.0\n")) is None


def screen(*arrivals: tuple[str, int, float], resumed: bool = True) -> Screen:
    s = Screen("http://gateway", "token", traffic.TOPICS)
    s.arrivals = [Arrival(*a) for a in arrivals]
    s.ids = {a[0] for a in arrivals}
    s.welcomes = [{"recovered": False}] + ([{"recovered": True}] if resumed else [])
    return s


def test_the_herds_figures_count_missing_duplicated_and_time_to_current() -> None:
    current = screen(("a", 10, 101.0), ("b", 12, 102.5))
    twice = screen(("c", 11, 101.0), ("c", 11, 101.5), ("d", 13, 103.0))
    short = screen(("e", 14, 101.0), resumed=False)
    figures = herd._figures([(current, {"a", "b"}), (twice, {"c", "d"}), (short, {"e", "f"})], ready=100.0)
    assert figures["current"] == 2 and figures["all_current_s"] is None
    assert figures["current_s"] == {"p50": 2.5, "p95": 3.0}
    assert (figures["missing"], figures["duplicated"], figures["in_order"]) == (1, 1, False)
    assert (figures["resumes"], figures["not_recovered"]) == (2, 0)
    lines = report._herd(
        {
            **figures,
            "screens": 3,
            "orgs": 2,
            "events_per_org": 2,
            "others": 0,
            "publish_s": 0.1,
            "restart_s": 2.0,
            "cpu_s": {"gateway": 1.0},
            "archive": {"at_ready": None, "at_end": None},
            "records_read": None,
        }
    )
    assert "2/3 current" in lines[1] and "1 missing, 1 duplicated, OUT OF ORDER" in lines[1]
