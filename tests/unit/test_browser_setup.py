"""harness/browser.py: Debian's chromium is installed when missing, and a machine that cannot
install it fails with one line saying how (never a silent skip of the browser tests)."""

from harness import browser


def test_nothing_is_run_where_chromium_is_installed():
    ran: list[tuple[str, ...]] = []
    said: list[str] = []
    assert browser.ensure(said.append, lambda c: ran.append(tuple(c)) or 0, lambda: True)
    assert ran == []
    assert said == []


def test_root_installs_debians_chromium_with_apt():
    ran: list[tuple[str, ...]] = []
    assert browser.ensure(
        lambda _: None,
        lambda c: ran.append(tuple(c)) or 0,
        lambda: bool(ran),
        root=True,
        apt=True,
    )
    assert ran == [("apt-get", "update", "-q"), ("apt-get", "install", "-y", "-q", "chromium")]


def test_a_failed_install_is_reported_as_missing():
    ran: list[tuple[str, ...]] = []
    assert not browser.ensure(
        lambda _: None, lambda c: ran.append(tuple(c)) or 100, lambda: False, root=True, apt=True
    )
    assert ran == [("apt-get", "update", "-q")]


def test_without_root_it_says_how_and_fails():
    said: list[str] = []
    assert not browser.ensure(said.append, lambda c: 0, lambda: False, root=False, apt=True)
    assert len(said) == 1
    assert "apt-get install chromium" in said[0]
