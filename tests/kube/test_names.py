import pytest

from pincompute.kube import names


@pytest.mark.parametrize("value", ["a", "web-1", "a" * 63, "0abc"])
def test_valid_labels(value: str) -> None:
    assert names.dns1123_label(value) == []


@pytest.mark.parametrize("value", ["", "A", "a_b", "-a", "a-", "a" * 64, "a.b"])
def test_invalid_labels(value: str) -> None:
    assert names.dns1123_label(value)


def test_subdomain_allows_dots_but_not_length() -> None:
    assert names.dns1123_subdomain("a.b-c.d") == []
    assert names.dns1123_subdomain("a" * 254)
    assert names.dns1123_subdomain("a..b")


def test_qualified_names() -> None:
    assert names.qualified_name("app") == []
    assert names.qualified_name("pincompute.io/tier") == []
    assert names.qualified_name("Bad/x")
    assert names.qualified_name("/x")
    assert names.qualified_name("x/")
    assert names.qualified_name("a" * 64)


def test_generate_name() -> None:
    generated = {names.generate_name("web-") for _ in range(50)}
    assert len(generated) > 40
    for name in generated:
        assert name.startswith("web-") and len(name) == 4 + names.GENERATED_SUFFIX_LEN
        assert names.dns1123_subdomain(name) == []
    assert len(names.generate_name("x" * 300)) == names.DNS1123_SUBDOMAIN_MAX
