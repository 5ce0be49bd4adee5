from __future__ import annotations

from pincompute.scheduler.framework import SKIP, SUCCESS, Code, Deps, unschedulable, wait


def test_status_helpers() -> None:
    assert SUCCESS.ok and not SUCCESS.rejected and SKIP.code == Code.SKIP
    st = unschedulable("a", "b", plugin="P")
    assert st.rejected and st.message == "a, b" and st.plugin == "P"
    assert unschedulable("x", resolvable=False).code == Code.UNRESOLVABLE
    assert wait(3).timeout == 3 and wait(3).code == Code.WAIT
    assert st.with_plugin("Q").plugin == "Q"


def test_dependencies_combine() -> None:
    deps = Deps.NODE | Deps.LOCAL
    assert deps & Deps.LOCAL and not deps & Deps.GLOBAL and not Deps.NONE
