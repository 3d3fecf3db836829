"""s4.store.metadata_words: user metadata values as RFC 2047 encoded words where bytes cannot travel as
they are (an upstream S3's client, a response header)."""

import pytest

from s4.store.base import ObjectAttributes
from s4.store.metadata_words import decode_metadata_value, encode_metadata_value, encoded_word, header_safe
from s4.store.s3.attributes import from_response, to_params

VALUES = [
    "plain",
    "",
    "caf\xe9",
    "\u4e2d\u6587 \U0001f600",
    "caf\udce9",  # the byte 0xE9 that was not UTF-8, as aiohttp hands it over
    "=?UTF-8?B?w6k=?=",  # a client's literal encoded word
    "x =?y",
    "=?",
]


@pytest.mark.parametrize("value", VALUES)
def test_values_round_trip_through_the_upstream_form(value):
    carried = encode_metadata_value(value)
    assert carried.isascii()
    assert decode_metadata_value(carried) == value


def test_ascii_values_travel_as_they_are():
    assert encode_metadata_value("blue, 42; a=b") == "blue, 42; a=b"
    assert encode_metadata_value("caf\xe9") == "=?UTF-8?B?Y2Fmw6k=?="


def test_s3s_own_encoded_words_are_decoded_and_broken_ones_left_alone():
    assert decode_metadata_value("=?UTF-8?B?w6k=?=") == "\xe9"
    assert decode_metadata_value("=?utf-8?b?w6k=?=") == "\xe9"
    assert decode_metadata_value("=?ISO-8859-1?B?6Q==?=") == "\xe9"
    for untouched in (
        "=?UTF-8?B?!!!?=",
        "=?UTF-8?B?w6k?=",
        "=?no-such-charset?B?w6k=?=",
        "a =?UTF-8?B?w6k=?=",
        "=?UTF-8?Q?x?=",
    ):
        assert decode_metadata_value(untouched) == untouched


def test_bytes_that_were_not_utf8_make_one_word():
    assert encoded_word("caf\udce9") == "=?UTF-8?B?Y2Fm6Q==?="


def test_the_s3_store_sends_ascii_and_reads_back_what_it_was_given():
    attributes = ObjectAttributes(content_type="text/plain", metadata={"Note": "caf\xe9", "plain": "x"}, headers={})
    params = to_params(attributes)
    assert all(value.isascii() for value in params["Metadata"].values())
    answer = {"ContentType": "text/plain", "Metadata": params["Metadata"], "ResponseMetadata": {"HTTPHeaders": {}}}
    assert from_response(answer).metadata == {"note": "caf\xe9", "plain": "x"}


def test_headers_carry_neither_control_characters_nor_lone_surrogates():
    assert header_safe("caf\xe9 \u4e2d\ttab")
    for unsafe in ("a\r\nX-Evil: 1", "bell\x07", "del\x7f", "caf\udce9"):
        assert not header_safe(unsafe)


def test_headers_no_client_can_send_travel_as_s4_metadata_and_come_back():
    attributes = ObjectAttributes(
        content_type="text/caf\udce9",
        metadata={},
        headers={"content-disposition": 'attachment; filename="caf\udce9"', "cache-control": "max-age=1"},
    )
    params = to_params(attributes)
    assert "ContentType" not in params and "ContentDisposition" not in params
    assert params["CacheControl"] == "max-age=1"
    assert all(value.isascii() for value in params["Metadata"].values())
    raw = {"cache-control": "max-age=1"}
    answer = {"Metadata": params["Metadata"], "ResponseMetadata": {"HTTPHeaders": raw}}
    back = from_response(answer)
    assert back.content_type == "text/caf\udce9"
    assert back.headers == {"content-disposition": 'attachment; filename="caf\udce9"', "cache-control": "max-age=1"}
    assert back.metadata == {}
