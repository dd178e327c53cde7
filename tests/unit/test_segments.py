import pytest

from services.sms.segments import GSM_BASIC, GSM_EXTENSION, segments


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", ("GSM-7", 1)),
        ("Hello", ("GSM-7", 1)),
        ("a" * 160, ("GSM-7", 1)),
        ("a" * 161, ("GSM-7", 2)),
        ("a" * 306, ("GSM-7", 2)),
        ("a" * 307, ("GSM-7", 3)),
        ("a" * 1530, ("GSM-7", 10)),
        ("Über café: ÄÖÑÜäöñüà£¥§¿¡ are all GSM", ("GSM-7", 1)),
        ("naïve", ("UCS-2", 1)),  # ï is not
    ],
)
def test_gsm_7_limits(body: str, expected: tuple[str, int]) -> None:
    assert segments(body) == expected


@pytest.mark.parametrize("ext", sorted(GSM_EXTENSION))
def test_extension_characters_count_double(ext: str) -> None:
    assert segments(ext * 80) == ("GSM-7", 1)
    assert segments(ext * 80 + "a") == ("GSM-7", 2)
    assert segments("a" * 159 + ext) == ("GSM-7", 2)


def test_the_extension_set_is_the_gsm_one() -> None:
    assert set("€[]{}^~|\\\f") == GSM_EXTENSION
    assert len(GSM_BASIC) == 127  # 128 code points, less the escape to the extension table


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("ж" * 70, ("UCS-2", 1)),
        ("ж" * 71, ("UCS-2", 2)),
        ("ж" * 134, ("UCS-2", 2)),
        ("ж" * 135, ("UCS-2", 3)),
        ("a" * 69 + "ж", ("UCS-2", 1)),  # one non-GSM character makes the whole body UCS-2
        ("a" * 70 + "ж", ("UCS-2", 2)),
        ("a" * 69 + "ç", ("UCS-2", 1)),  # ç is not GSM (only Ç is)
        ("€" * 35 + "ж", ("UCS-2", 1)),  # in UCS-2 the euro sign is one unit again
    ],
)
def test_ucs_2_limits(body: str, expected: tuple[str, int]) -> None:
    assert segments(body) == expected


def test_an_emoji_takes_two_utf16_units() -> None:
    assert segments("😀" * 35) == ("UCS-2", 1)
    assert segments("😀" * 35 + "a") == ("UCS-2", 2)
    assert segments("a" * 69 + "😀") == ("UCS-2", 2)
    assert segments("é" * 68 + "😀") == ("UCS-2", 1)  # é is GSM, the emoji is not


def test_a_character_is_never_split_across_parts() -> None:
    # 306 septets fit in 2 parts of 153 only if the escape pair could straddle the boundary.
    assert segments("a" * 152 + "€" + "a" * 152) == ("GSM-7", 3)
    assert segments("a" * 151 + "€" + "a" * 153) == ("GSM-7", 2)
    assert segments("ж" * 66 + "😀" + "ж" * 66) == ("UCS-2", 3)
    assert segments("ж" * 65 + "😀" + "ж" * 67) == ("UCS-2", 2)
