import pytest

from vidbench.errors import VidbenchError
from vidbench.registry import Registry


def test_lazy_entry_is_imported_only_when_asked():
    reg = Registry("thing")
    reg.add("join", "os.path:join", about="lazy")
    assert reg._entries["join"] == "os.path:join"
    import os.path

    assert reg.get("join") is os.path.join
    assert reg.info("join") == {"about": "lazy"}


def test_decorator_and_names():
    reg = Registry("thing")

    @reg.register("alpha", higher_is_better=True)
    def alpha():
        return 1

    assert reg.get("alpha") is alpha and reg.names() == ["alpha"] and "alpha" in reg
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("alpha", lambda: 2)


def test_unknown_name_suggests_close_matches():
    reg = Registry("model")
    reg.add("cwvae", object())
    reg.add("rssm", object())
    with pytest.raises(VidbenchError, match=r"unknown model 'cwvea'; did you mean 'cwvae'"):
        reg.get("cwvea")
    with pytest.raises(VidbenchError) as info:
        reg.get("zzz")
    assert "did you mean" not in str(info.value) and "vidbench ls models" in str(info.value)
