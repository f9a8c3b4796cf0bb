"""The models in service: load the version current.json names, swap when it moves.

A function instance holds one `ModelRegistry`. At cold start it reads the pointer,
fetches and verifies the files of the models it serves (each file's sha256 against the
manifest), and builds one serving object per served manifest entry. Which models a
process serves: SERVED_MODELS if set, else what its functions declare next to their
entry points (`serve_models` in functions/<name>/main.py; the union when one process
imports several, as the local server does), else all of them (CLIs, scripts, tests).
A model outside that set is unavailable (`ModelUnavailableError`, the caller's fallback)
in every version, so a hot swap loads the same subset. Afterwards, at most once per TTL,
a call to `get()` re-reads the pointer; when it names another version, that version is loaded
completely off to the side and then swapped in with one reference assignment, so a
request sees either the old version or the new one, never a mix. A version that fails
to verify or load is refused with a logged error and the previous one stays in service.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from shared.artifacts.manifest import CorruptArtifactError
from shared.artifacts.store import ArtifactStore, open_store
from shared.artifacts.versions import Pointer, fetch_version, read_current

if TYPE_CHECKING:  # the classes are imported lazily at run time (MODEL_CLASSES)
    from shared.models.confusion import ConfusionModel
    from shared.models.encoder import EncoderModel
    from shared.models.encoder_intent import EncoderIntentModel
    from shared.models.grader import GraderModel
    from shared.models.intent import IntentModel
    from shared.models.predictor import PredictorModel

log = logging.getLogger(__name__)

#: manifest key -> "module:Class"; imported lazily so one missing model module does not
#: take the others down. Classes are constructed as Class(version_dir, entry).
MODEL_CLASSES: dict[str, str] = {
    "encoder": "shared.models.encoder:EncoderModel",
    "intent": "shared.models.intent:IntentModel",
    "encoder_intent": "shared.models.encoder_intent:EncoderIntentModel",
    "confusion": "shared.models.confusion:ConfusionModel",
    "predictor": "shared.models.predictor:PredictorModel",
    "grader": "shared.models.grader:GraderModel",
}


#: model -> the model of the same version that does its work: when a version has both and
#: this process serves both, only the second is fetched and loaded. Chat reads the intent in
#: the encoder's pass (`encoder_intent`); the fine-tuned intent model would only be its
#: fallback, 23 MB to download and ~40 MB of memory per instance (the fallback is then the
#: keyword rules). A version without `encoder_intent` loads the intent model as before.
SUPERSEDED_BY: dict[str, str] = {"intent": "encoder_intent"}


def loaded_models(served: set[str] | dict[str, Any], in_version: set[str] | dict[str, Any]) -> set[str]:
    """The models a process serving `served` loads from a version holding `in_version`."""
    present = set(served) & set(in_version)
    return {name for name in present if SUPERSEDED_BY.get(name) not in present}


_declared: set[str] = set()
_declared_by: list[str] = []


def serve_models(*names: str) -> tuple[str, ...]:
    """Declare the models a function serves (called once at import, next to its entry
    point); returns `names`. Declaring none (`serve_models()`) means the function loads
    no model. A name that is not a model is a programming error, raised at import."""
    unknown = sorted(set(names) - set(MODEL_CLASSES))
    if unknown:
        raise ValueError(f"serve_models: unknown model(s) {unknown}; known: {sorted(MODEL_CLASSES)}")
    _configured()  # a bad SERVED_MODELS fails the instance's start, not its first request
    with _registry_lock:
        _declared.update(names)
        _declared_by.append(",".join(names))
        if _registry is not None and not set(names) <= set(_registry.classes):
            # A registry built before this declaration would miss these models: rebuild.
            log.warning("serve_models(%s) after the registry was built: it will be rebuilt", ",".join(names))
            _reset_locked()
    return names


def _configured() -> tuple[str, ...] | None:
    """SERVED_MODELS, checked (None when unset)."""
    from shared.config import get_settings

    configured = get_settings().served_models
    if configured is None:
        return None
    if [n.lower() for n in configured] == ["all"]:
        return tuple(MODEL_CLASSES)
    unknown = sorted(set(configured) - set(MODEL_CLASSES))
    if unknown:
        raise ValueError(f"SERVED_MODELS names unknown model(s) {unknown}; known: {sorted(MODEL_CLASSES)} or all")
    return tuple(n for n in MODEL_CLASSES if n in configured)


def served_models() -> tuple[str, ...]:
    """The models this process serves (see the module docstring), in MODEL_CLASSES order."""
    configured = _configured()
    if configured is not None:
        return configured
    if _declared_by:
        return tuple(n for n in MODEL_CLASSES if n in _declared)
    return tuple(MODEL_CLASSES)


class ModelUnavailableError(LookupError):
    """The model is not in the version in service (or nothing is published yet).

    Callers catch it and use the model's fallback, saying so in the response.
    """


@dataclass(frozen=True)
class LoadedVersion:
    """One fully loaded version; immutable, so swapping the reference is the whole swap."""

    version: str
    path: Path
    manifest: dict
    models: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    manifest_sha256: str | None = None


def _resolve(spec: str) -> Callable[..., Any]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


class ModelRegistry:
    """Serves the models of the version in service, from one artifact store."""

    def __init__(
        self,
        store: ArtifactStore | str | Path | None = None,
        *,
        cache_dir: Path | None = None,
        ttl_s: float | None = None,
        classes: dict[str, str | Callable[..., Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if store is None or ttl_s is None or cache_dir is None:
            from shared.config import get_settings

            settings = get_settings()
            store = settings.model_store if store is None else store
            ttl_s = settings.model_pointer_ttl_s if ttl_s is None else ttl_s
            cache_dir = settings.state_dir / "model-cache" if cache_dir is None else cache_dir
        self.store = store if isinstance(store, ArtifactStore) else open_store(str(store))
        self.cache_dir = Path(cache_dir)
        self.ttl_s = float(ttl_s)
        self.classes = dict(MODEL_CLASSES if classes is None else classes)
        self._clock = clock
        self._current: LoadedVersion | None = None
        self._checked_at: float | None = None
        self._load_lock = threading.Lock()
        self.last_error: str | None = None
        self._refused: tuple[str, str | None] | None = None

    # --- reading -----------------------------------------------------------------
    @property
    def version(self) -> str | None:
        """The version in service (None before anything could be loaded)."""
        self._maybe_refresh()
        return self._current.version if self._current else None

    @property
    def loaded(self) -> LoadedVersion | None:
        self._maybe_refresh()
        return self._current

    @overload
    def get(self, name: Literal["encoder"]) -> EncoderModel: ...
    @overload
    def get(self, name: Literal["intent"]) -> IntentModel: ...
    @overload
    def get(self, name: Literal["encoder_intent"]) -> EncoderIntentModel: ...
    @overload
    def get(self, name: Literal["confusion"]) -> ConfusionModel: ...
    @overload
    def get(self, name: Literal["grader"]) -> GraderModel: ...
    @overload
    def get(self, name: Literal["predictor"]) -> PredictorModel: ...
    @overload
    def get(self, name: str) -> Any: ...

    def get(self, name: str) -> Any:
        """The serving object of model `name` in the version in service (typed per name)."""
        self._maybe_refresh()
        current = self._current
        if current is None:
            raise ModelUnavailableError(
                f"no model version is loaded from {self.store}: {self.last_error or 'none published'}"
            )
        if name in current.models:
            return current.models[name]
        if name not in self.classes and name in current.manifest.get("models", {}):
            raise ModelUnavailableError(
                f"model {name!r} is not served by this process (it serves {sorted(self.classes) or 'none'}; "
                "see serve_models / SERVED_MODELS)"
            )
        in_version = current.manifest.get("models", {})
        if name in in_version and name not in loaded_models(self.classes, in_version):
            raise ModelUnavailableError(
                f"model {name!r} is not loaded: {SUPERSEDED_BY[name]!r} of version {current.version} does its work"
            )
        reason = current.errors.get(name) or f"version {current.version} has no model {name!r}"
        raise ModelUnavailableError(reason)

    def describe(self) -> dict:
        """What is in service, for health endpoints and logs."""
        current = self._current
        return {
            "store": self.store.uri,
            "version": current.version if current else None,
            "serves": sorted(self.classes),
            "models": sorted(current.models) if current else [],
            "unavailable": dict(current.errors) if current else {},
            "last_error": self.last_error,
        }

    # --- loading -----------------------------------------------------------------
    def _maybe_refresh(self) -> None:
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self.ttl_s:
            return
        if self._current is None:
            # Cold start: callers must wait for the first load.
            with self._load_lock:
                if self._current is None and (
                    self._checked_at is None or self._clock() - self._checked_at >= self.ttl_s
                ):
                    self._refresh_locked()
            return
        # Warm: one thread re-checks; the others keep serving the current version.
        if self._load_lock.acquire(blocking=False):
            try:
                self._refresh_locked()
            finally:
                self._load_lock.release()

    def refresh(self) -> str | None:
        """Re-read the pointer now (ignoring the TTL); return the version in service."""
        with self._load_lock:
            self._refresh_locked()
        return self._current.version if self._current else None

    def _refresh_locked(self) -> None:
        self._checked_at = self._clock()
        try:
            pointer = read_current(self.store)
        except Exception as exc:  # noqa: BLE001 - a store outage must not stop serving
            self._fail(f"cannot read the pointer in {self.store}: {exc}")
            return
        if pointer is None:
            if self._current is None:
                self.last_error = f"nothing published in {self.store} (no current.json)"
            return
        current = self._current
        if current and (current.version, current.manifest_sha256) == (
            pointer.version,
            pointer.manifest_sha256,
        ):
            return
        if self._refused == (pointer.version, pointer.manifest_sha256):
            return  # already refused this exact version; do not re-download every poll
        try:
            loaded = self._load(pointer)
        except CorruptArtifactError as exc:
            # Corrupt bytes stay corrupt: remember, so every poll does not re-download.
            self._refused = (pointer.version, pointer.manifest_sha256)
            self._fail(f"refused version {pointer.version}: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - e.g. a store outage: retry after the TTL
            self._fail(f"could not load version {pointer.version}: {exc}")
            return
        if loaded.errors and current is not None:
            self._refused = (pointer.version, pointer.manifest_sha256)
            self._fail(f"refused version {pointer.version}: models failed to load: {loaded.errors}")
            return
        self._current = loaded  # the atomic swap
        self._refused = None
        self.last_error = None
        log.info(
            "model version %s in service",
            loaded.version,
            extra={"models": sorted(loaded.models), "unavailable": loaded.errors},
        )

    def _fail(self, message: str) -> None:
        self.last_error = message
        in_service = self._current.version if self._current else None
        log.error("%s (in service: %s)", message, in_service)

    def _writable_cache_dir(self) -> Path:
        """The download cache; a deployed function's source folder is read-only, /tmp is not."""
        if self.store.local_path("") is not None:
            return self.cache_dir  # a local store is read in place: nothing is downloaded
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            return self.cache_dir
        except OSError:
            fallback = Path(tempfile.gettempdir()) / "cognitive-model-cache"
            log.warning("model cache %s is not writable; using %s", self.cache_dir, fallback)
            self.cache_dir = fallback
            return fallback

    def _load(self, pointer: Pointer) -> LoadedVersion:
        path, manifest = fetch_version(
            self.store,
            pointer.version,
            self._writable_cache_dir(),
            expected_manifest_sha256=pointer.manifest_sha256,
            # only the loaded models' files are fetched and verified
            models=lambda manifest: loaded_models(self.classes, manifest.get("models", {})),
        )
        models: dict[str, Any] = {}
        errors: dict[str, str] = {}
        wanted = loaded_models(self.classes, manifest.get("models", {}))
        for name, entry in manifest.get("models", {}).items():
            spec = self.classes.get(name)
            if spec is None or name not in wanted:
                continue  # not served here (the grader elsewhere), or superseded (SUPERSEDED_BY)
            try:
                factory = _resolve(spec) if isinstance(spec, str) else spec
                models[name] = factory(path, entry)
            except Exception as exc:
                errors[name] = f"{name} failed to load from {pointer.version}: {exc}"
                log.exception("loading %s from %s failed", name, pointer.version)
        if not models and errors:
            raise CorruptArtifactError("; ".join(errors.values()))
        return LoadedVersion(
            version=pointer.version,
            path=path,
            manifest=manifest,
            models=models,
            errors=errors,
            manifest_sha256=pointer.manifest_sha256,
        )


_registry: ModelRegistry | None = None
_registry_lock = threading.Lock()


def get_registry() -> ModelRegistry:
    """The process-wide registry over settings.model_store, serving `served_models()`
    (created on first use)."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = ModelRegistry(classes={name: MODEL_CLASSES[name] for name in served_models()})
    return _registry


def _reset_locked() -> None:
    global _registry
    _registry = None


def reset_registry() -> None:
    """Forget the process-wide registry (tests, or after changing settings)."""
    with _registry_lock:
        _reset_locked()
