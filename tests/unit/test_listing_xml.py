"""Listing pages read by ``listing_xml``: what other servers and tools may put in one."""

from __future__ import annotations

from datetime import UTC, datetime

from sync_agent import listing_xml

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _page(body: str, truncated: str = "false", extra: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult xmlns="{NS}"><Name>b</Name>'
            f"<IsTruncated>{truncated}</IsTruncated>{extra}{body}</ListVersionsResult>").encode()


def test_versions_markers_and_metadata_in_minio_py_order() -> None:
    page = listing_xml.parse(_page(
        "<Version><Key>a.txt</Key><VersionId>v2</VersionId><IsLatest>true</IsLatest>"
        "<LastModified>2026-11-26T19:02:04.123Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>5</Size>"
        "<UserMetadata><X-Amz-Meta-Pd-Sha256>00</X-Amz-Meta-Pd-Sha256></UserMetadata></Version>"
        "<DeleteMarker><Key>a.txt</Key><VersionId>v3</VersionId><IsLatest>false</IsLatest>"
        "<LastModified>2026-11-26T19:02:05Z</LastModified></DeleteMarker>"
        "<Version><Key>b.txt</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest><Size>0</Size></Version>",
        truncated="true", extra="<NextKeyMarker>b.txt</NextKeyMarker><NextVersionIdMarker>v1</NextVersionIdMarker>"))
    assert [(o.key, o.version_id, o.is_latest, o.is_delete_marker) for o in page.objects] == [
        ("a.txt", "v2", True, False), ("b.txt", "v1", False, False), ("a.txt", "v3", False, True)]
    first = page.objects[0]
    assert (first.size, first.etag, first.meta) == (5, "abc", {"X-Amz-Meta-Pd-Sha256": "00"})
    assert first.last_modified == datetime(2026, 11, 26, 19, 2, 4, 123000, tzinfo=UTC)
    assert (page.truncated, page.next_key, page.next_version) == (True, "b.txt", "v1")


def test_what_another_tool_or_server_may_send() -> None:
    page = listing_xml.parse(_page(
        "<Contents><Key>folder/</Key><Size>0</Size></Contents>"  # a folder placeholder: not an object
        "<Contents><Size>3</Size></Contents>"  # no key: skipped
        "<Contents><Key>caf%C3%A9+x.txt</Key><LastModified>not a date</LastModified><Size>3</Size></Contents>"
        "<Contents><Key>n.txt</Key><LastModified>2026-11-26T19:02:04.123456789Z</LastModified></Contents>",
        truncated="true", extra="<EncodingType>url</EncodingType><NextContinuationToken>tok</NextContinuationToken>"))
    assert [o.key for o in page.objects] == ["café x.txt", "n.txt"]
    assert page.objects[0].last_modified is None  # unreadable: the node's clock is unknown, not a crash
    assert page.objects[1].last_modified == datetime(2026, 11, 26, 19, 2, 4, 123456, tzinfo=UTC)
    assert (page.next_key, page.next_version) == ("tok", None)


def test_a_truncated_page_without_a_marker_goes_on_after_its_last_key() -> None:
    page = listing_xml.parse(_page("<Contents><Key>k1</Key></Contents><Contents><Key>k2</Key></Contents>",
                                   truncated="true"))
    assert page.next_key == "k2"
