"""The registry: load the version in service, verify it, swap atomically on a pointer move.

These tests use tiny fake model classes (a file's text) so they run without any
published model; `test_registry_serves_the_published_models` uses the real ones.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from shared.artifacts.manifest import build_manifest
from shared.artifacts.store import LocalStore
from shared.artifacts.versions import publish_version, set_current
from shared.models.registry import ModelRegistry, ModelUnavailableError


class TextModel:
    """Serving class stand-in: remembers the text of its file and the version it came from."""

    def __init__(self, version_dir: Path, entry: dict) -> None:
        self.text = (Path(version_dir) / entry["file"]).read_text()
        self.version = Path(version_dir).name


class BrokenModel:
    def __init__(self, version_dir: Path, entry: dict) -> None:
        raise ValueError("cannot parse the graph")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def publish(store: LocalStore, tmp: Path, tag: str, *, models=("a", "b"), point=True) -> str:
    folder = tmp / f"build-{tag}"
    folder.mkdir()
    entries = {}
    for name in models:
        (folder / f"{name}.onnx").write_text(f"{name}:{tag}")
        entries[name] = {"file": f"{name}.onnx", "extra_files": []}
    manifest = build_manifest(folder, version="v1", models=entries)
    version = publish_version(store, folder, manifest)
    if point:
        set_current(store, version)
    return version


@pytest.fixture()
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "models")


@pytest.fixture()
def clock() -> Clock:
    return Clock()


def make_registry(store: LocalStore, tmp_path: Path, clock: Clock, **classes) -> ModelRegistry:
    return ModelRegistry(
        store,
        cache_dir=tmp_path / "cache",
        ttl_s=30,
        classes=classes or {"a": TextModel, "b": TextModel},
        clock=clock,
    )


def test_nothing_published_is_a_clear_unavailable_error(store, tmp_path, clock) -> None:
    registry = make_registry(store, tmp_path, clock)
    with pytest.raises(ModelUnavailableError, match="nothing published"):
        registry.get("a")
    assert registry.version is None


def test_loads_the_version_current_json_names(store, tmp_path, clock) -> None:
    publish(store, tmp_path, "one")
    registry = make_registry(store, tmp_path, clock)
    assert registry.get("a").text == "a:one"
    assert registry.version == "v1"
    assert registry.describe()["models"] == ["a", "b"]
    with pytest.raises(ModelUnavailableError, match="no model 'c'"):
        registry.get("c")


def test_picks_up_a_moved_pointer_only_after_the_ttl(store, tmp_path, clock) -> None:
    publish(store, tmp_path, "one")
    registry = make_registry(store, tmp_path, clock)
    assert registry.get("a").text == "a:one"
    publish(store, tmp_path, "two")
    clock.now = 29.0
    assert registry.get("a").text == "a:one", "within the TTL the pointer is not re-read"
    clock.now = 30.0
    assert registry.get("a").text == "a:two"
    assert registry.version == "v2"


def test_a_corrupt_new_version_is_refused_and_the_old_one_kept(store, tmp_path, clock) -> None:
    publish(store, tmp_path, "one")
    registry = make_registry(store, tmp_path, clock)
    assert registry.version == "v1"
    v2 = publish(store, tmp_path, "two")
    (store.root / v2 / "a.onnx").write_text("a:TWO")  # same size, altered bytes
    clock.now = 100
    assert registry.get("a").text == "a:one"
    assert registry.version == "v1"
    assert "refused version v2" in registry.last_error and "sha256" in registry.last_error
    # a repaired pointer target is picked up at the next check
    v3 = publish(store, tmp_path, "three")
    clock.now = 200
    assert registry.version == v3 and registry.last_error is None


def test_a_corrupt_first_version_serves_nothing_with_the_reason(store, tmp_path, clock) -> None:
    publish(store, tmp_path, "one")
    (store.root / "v1" / "b.onnx").unlink()
    registry = make_registry(store, tmp_path, clock)
    with pytest.raises(ModelUnavailableError, match=r"b\.onnx: missing"):
        registry.get("a")


def test_a_version_whose_model_fails_to_load_does_not_replace_a_good_one(store, tmp_path, clock) -> None:
    publish(store, tmp_path, "one")
    registry = make_registry(store, tmp_path, clock)
    assert registry.version == "v1"
    registry.classes["b"] = BrokenModel
    publish(store, tmp_path, "two")
    clock.now = 100
    assert registry.get("b").text == "b:one"
    assert "cannot parse the graph" in registry.last_error


def test_without_a_previous_version_the_loadable_models_are_served(store, tmp_path, clock) -> None:
    publish(store, tmp_path, "one")
    registry = make_registry(store, tmp_path, clock, a=TextModel, b=BrokenModel)
    assert registry.get("a").text == "a:one"
    with pytest.raises(ModelUnavailableError, match="cannot parse the graph"):
        registry.get("b")
    assert "b" in registry.describe()["unavailable"]


def test_a_manifest_changed_behind_the_pointer_is_refused(store, tmp_path, clock) -> None:
    publish(store, tmp_path, "one")
    registry = make_registry(store, tmp_path, clock)
    assert registry.version == "v1"
    manifest_path = store.root / "v1" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["models"]["a"]["metrics"] = {"forged": True}
    manifest_path.write_text(json.dumps(manifest))
    fresh = make_registry(store, tmp_path, clock)
    with pytest.raises(ModelUnavailableError, match="does not match"):
        fresh.get("a")


def test_readers_never_see_a_mix_of_two_versions(store, tmp_path, clock) -> None:
    """While the pointer flips between v1 and v2, every snapshot is one whole version."""
    publish(store, tmp_path, "one")
    publish(store, tmp_path, "two", point=False)
    registry = make_registry(store, tmp_path, clock)
    assert registry.version == "v1"  # loaded; from now on only refresh() re-reads the pointer
    stop = threading.Event()
    seen: set[str] = set()
    problems: list[str] = []

    def read() -> None:
        while not stop.is_set():
            loaded = registry.loaded
            tags = {model.text.split(":")[1] for model in loaded.models.values()}
            versions = {model.version for model in loaded.models.values()}
            if len(tags) != 1 or versions != {loaded.version}:
                problems.append(f"{loaded.version}: {tags} {versions}")
            seen.add(loaded.version)
            time.sleep(0.0005)  # let the publishing thread run (GIL)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for i in range(30):
        set_current(store, "v2" if i % 2 == 0 else "v1")
        registry.refresh()
    stop.set()
    for t in readers:
        t.join()
    assert not problems
    assert seen == {"v1", "v2"}


def test_registry_serves_the_published_models(published_registry, published) -> None:
    """The real store: every model of the version in service loads with its serving class."""
    assert published_registry.version == published.version
    info = published_registry.describe()
    assert info["unavailable"] == {}, info
    encoder = published_registry.get("encoder")
    vectors = encoder.embed(["how do loops work?"])
    assert vectors.shape == (1, encoder.dimension)


def test_a_store_outage_is_retried_after_the_ttl(store, tmp_path, clock, monkeypatch) -> None:
    publish(store, tmp_path, "one")
    registry = make_registry(store, tmp_path, clock)
    assert registry.version == "v1"
    publish(store, tmp_path, "two")
    real_read = store.read_bytes
    down = {"on": True}

    def flaky_read(key: str) -> bytes:
        if down["on"] and key.endswith("manifest.json"):
            raise ConnectionError("store unreachable")
        return real_read(key)

    monkeypatch.setattr(store, "read_bytes", flaky_read)
    clock.now = 100
    assert registry.get("a").text == "a:one"
    assert "store unreachable" in registry.last_error
    down["on"] = False
    clock.now = 200
    assert registry.get("a").text == "a:two", "a transient failure must not block the version"


# --- the models a process serves (per-function subsets) ---------------------------------------
class RemoteLikeStore(LocalStore):
    """A store read through downloads, as GCS is (no local path): records what it fetched."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.downloaded: list[str] = []

    def local_path(self, version: str) -> Path | None:
        return None

    def download_file(self, key: str, path: Path) -> None:
        self.downloaded.append(key)
        super().download_file(key, path)


def test_a_subset_registry_fetches_and_loads_only_its_models(tmp_path, clock) -> None:
    store = RemoteLikeStore(tmp_path / "models")
    publish(store, tmp_path, "one", models=("a", "b", "c"))
    registry = make_registry(store, tmp_path, clock, a=TextModel)
    assert registry.get("a").text == "a:one"
    assert store.downloaded == ["v1/a.onnx"], "b and c are neither downloaded nor hashed"
    assert registry.describe()["models"] == ["a"] and registry.describe()["serves"] == ["a"]
    with pytest.raises(ModelUnavailableError, match="not served by this process"):
        registry.get("b")  # the clear unavailable path: the caller's fallback answers
    with pytest.raises(ModelUnavailableError, match="no model 'z'"):
        registry.get("z")


def test_a_model_superseded_in_a_version_is_neither_fetched_nor_loaded(tmp_path, clock) -> None:
    """Chat serves the intent model and `encoder_intent`; a version holding both loads
    only the second (it does the first's work), a version without it the first."""
    store = RemoteLikeStore(tmp_path / "models")
    publish(store, tmp_path, "one", models=("encoder", "intent", "encoder_intent"))
    registry = make_registry(store, tmp_path, clock, encoder=TextModel, intent=TextModel, encoder_intent=TextModel)
    assert sorted(registry.loaded.models) == ["encoder", "encoder_intent"]
    assert sorted(store.downloaded) == ["v1/encoder.onnx", "v1/encoder_intent.onnx"]
    with pytest.raises(ModelUnavailableError, match="'encoder_intent' of version v1 does its work"):
        registry.get("intent")
    publish(store, tmp_path, "two", models=("encoder", "intent"))  # a version built without the head
    clock.now = 100
    assert registry.get("intent").text == "intent:two"
    assert sorted(registry.loaded.models) == ["encoder", "intent"]
    only_intent = make_registry(store, tmp_path / "other", clock, intent=TextModel)  # not serving the head
    publish(store, tmp_path, "three", models=("encoder", "intent", "encoder_intent"))
    assert only_intent.get("intent").text == "intent:three"


def test_a_hot_swap_loads_the_same_subset(tmp_path, clock) -> None:
    store = RemoteLikeStore(tmp_path / "models")
    publish(store, tmp_path, "one", models=("a", "b"))
    registry = make_registry(store, tmp_path, clock, b=TextModel)
    assert registry.get("b").text == "b:one"
    publish(store, tmp_path, "two", models=("a", "b"))
    clock.now = 100
    assert registry.get("b").text == "b:two" and registry.version == "v2"
    assert sorted(registry.loaded.models) == ["b"]
    assert store.downloaded == ["v1/b.onnx", "v2/b.onnx"]
    with pytest.raises(ModelUnavailableError, match="not served"):
        registry.get("a")


def test_a_damaged_model_outside_the_subset_does_not_block_the_served_ones(store, tmp_path, clock) -> None:
    publish(store, tmp_path, "one", models=("a", "b"))
    (store.root / "v1" / "b.onnx").write_text("b:ONE")  # corrupt, but this process does not serve b
    registry = make_registry(store, tmp_path, clock, a=TextModel)
    assert registry.get("a").text == "a:one" and registry.last_error is None
    full = make_registry(store, tmp_path, clock)  # a process serving b refuses the version
    with pytest.raises(ModelUnavailableError, match=r"b\.onnx: sha256"):
        full.get("a")


@pytest.fixture()
def fresh_declarations(monkeypatch):
    """The process-wide declarations and registry as in a fresh function instance."""
    from shared.config import reset_settings_cache
    from shared.models import registry as module

    monkeypatch.setattr(module, "_declared", set())
    monkeypatch.setattr(module, "_declared_by", [])
    monkeypatch.setattr(module, "_registry", None)
    monkeypatch.delenv("SERVED_MODELS", raising=False)
    reset_settings_cache()
    yield module
    reset_settings_cache()


def test_served_models_follow_the_declarations_of_the_imported_functions(fresh_declarations, monkeypatch) -> None:
    module = fresh_declarations
    assert module.served_models() == tuple(module.MODEL_CLASSES), "nothing declared (a CLI): every model"
    module.serve_models()
    assert module.served_models() == (), "a function that declares none loads none"
    module.serve_models("intent", "encoder")
    assert module.served_models() == ("encoder", "intent")
    module.serve_models("grader", "encoder")  # a second function in the same process: the union
    assert module.served_models() == ("encoder", "intent", "grader")
    assert sorted(module.get_registry().classes) == ["encoder", "grader", "intent"]
    with pytest.raises(ValueError, match="unknown model"):
        module.serve_models("encoder", "gradr")


def test_a_declaration_after_the_registry_was_built_rebuilds_it(fresh_declarations) -> None:
    module = fresh_declarations
    module.serve_models("predictor")
    first = module.get_registry()
    module.serve_models("predictor")  # nothing new: kept
    assert module.get_registry() is first
    module.serve_models("encoder")
    assert sorted(module.get_registry().classes) == ["encoder", "predictor"]


def test_served_models_setting_overrides_the_declarations(fresh_declarations, monkeypatch) -> None:
    from shared.config import reset_settings_cache

    module = fresh_declarations
    module.serve_models("predictor")
    monkeypatch.setenv("SERVED_MODELS", "all")
    reset_settings_cache()
    assert module.served_models() == tuple(module.MODEL_CLASSES)
    monkeypatch.setenv("SERVED_MODELS", " intent , confusion")
    reset_settings_cache()
    assert module.served_models() == ("intent", "confusion")
    monkeypatch.setenv("SERVED_MODELS", "intent,bogus")
    reset_settings_cache()
    with pytest.raises(ValueError, match="SERVED_MODELS names unknown"):
        module.served_models()
    with pytest.raises(ValueError, match="SERVED_MODELS names unknown"):
        module.serve_models("intent")  # at the function's import: the instance does not start
    monkeypatch.setenv("SERVED_MODELS", "")
    reset_settings_cache()
    assert module.served_models() == ("predictor",), "empty is unset"


@pytest.mark.parametrize(
    ("function", "models"),
    [
        ("chat", ("encoder", "intent", "confusion", "encoder_intent")),
        ("grading", ("grader", "encoder")),
        ("prediction", ("predictor",)),
        ("feedback", ()),
        ("nightly", ()),
        ("retrain", ()),
    ],
)
def test_each_function_declares_the_models_it_serves(function: str, models: tuple[str, ...]) -> None:
    import importlib

    assert importlib.import_module(f"functions.{function}.main").SERVED_MODELS == models
