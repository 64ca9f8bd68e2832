"""app/multiproc.py: the scrape over a multiprocess directory that workers join and leave."""

from prometheus_client.mmap_dict import MmapedDict, mmap_key

from app.multiproc import collect

from .helpers import samples, value


def test_a_worker_file_still_being_created_is_left_for_the_next_scrape(tmp_path):
    # a worker that served 7 requests...
    counts = MmapedDict(str(tmp_path / "counter_1001.db"))
    key = mmap_key("http_requests", "http_requests_total", ["route"], ["/"], "help")
    counts.write_value(key, 7.0, 0.0)
    counts.close()
    # ...and one booting: prometheus_client opens its file (0 bytes) before sizing it
    (tmp_path / "counter_1002.db").touch()
    (tmp_path / "histogram_1002.db").touch()

    scraped = samples(collect(str(tmp_path)).decode())

    assert value(scraped, "http_requests_total", route="/") == 7
