"""Workspace configuration: ``iconoscope.toml`` -> typed, validated dataclasses.

One file names everything a collection needs, as an Annif project file does: the store, the vocabularies,
the sources and the classifier projects. Validation happens once, here, so that a typo fails at start-up with
the key, the value and what was expected (exit code 2), not deep inside a training run.

Relative paths are resolved against the folder of the config file; ``ICONOSCOPE_DATA`` (or the ``[paths]``
table) lets a user point ``${data}`` placeholders at another data folder without editing the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from iconoscope.errors import ConfigError

CONFIG_NAME = "iconoscope.toml"

VOCAB_FORMATS = ("skos", "iconclass", "csv")
SOURCE_KINDS = ("csv", "tsv", "jsonl", "rdf", "iiif")
SUBJECT_PARSERS = ("list", "garnier")
HEAD_KINDS = ("linear", "mlp", "finetune", "multimodal", "ensemble")
#: heads whose trained models an ensemble can average (each scores vectors of one backbone spec)
ENSEMBLE_MEMBER_HEADS = ("linear", "mlp", "finetune")
STORE_KINDS = ("oxigraph", "sparql")
RECORD_FIELDS = ("id", "title", "creator", "date", "medium", "subject", "image")


def _expect(cond: bool, where: str, key: str, value: Any, expected: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: key '{key}' = {value!r}: expected {expected}")


def _get(table: dict[str, Any], key: str, where: str, typ: type | tuple[type, ...], default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}: missing key '{key}'")
        return default
    value = table[key]
    names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
    _expect(isinstance(value, typ), where, key, value, f"a {names}")
    return value


def _unknown_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}")


@dataclass(frozen=True)
class StoreConfig:
    """Which graph store to use. ``oxigraph`` keeps the graph on disk in the workspace."""

    kind: str = "oxigraph"
    path: Path | None = None
    query_url: str | None = None
    update_url: str | None = None
    user: str | None = None
    password_env: str | None = None
    timeout_s: float = 60.0


@dataclass(frozen=True)
class VocabularyConfig:
    name: str
    path: Path | None = None
    format: str = "skos"
    languages: tuple[str, ...] = ("en",)
    scheme: str | None = None


@dataclass(frozen=True)
class SourceConfig:
    """A source of records. ``fields`` maps our record fields to the source's column names."""

    name: str
    kind: str
    path: Path
    fields: dict[str, str] = field(default_factory=dict)
    images: Path | None = None
    vocabularies: tuple[str, ...] = ()
    subject_parser: str = "list"
    subject_separator: str = ";"
    subject_lang: str | None = None
    mapping: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClassifierConfig:
    """A classifier project (as in Annif): categories of a vocabulary, a backbone and a head."""

    name: str
    vocabulary: str | None
    categories: tuple[str, ...]
    backbone: str = "builtin:smallcnn"
    head: str = "linear"
    expand: str = "narrower"
    exclude: tuple[str, ...] = ()
    related: bool = False
    folds: int = 5
    sources: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    token_env: str = "ICONOSCOPE_TOKEN"
    token: str | None = None
    query_timeout_s: float = 10.0


@dataclass(frozen=True)
class Config:
    """The whole workspace configuration."""

    root: Path
    name: str
    base_iri: str
    languages: tuple[str, ...]
    store: StoreConfig
    vocabularies: dict[str, VocabularyConfig]
    sources: dict[str, SourceConfig]
    classifiers: dict[str, ClassifierConfig]
    serve: ServeConfig
    default_backbone: str = "builtin:smallcnn"
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def classifier(self, name: str) -> ClassifierConfig:
        if name not in self.classifiers:
            known = ", ".join(sorted(self.classifiers)) or "none"
            raise ConfigError(f"{self.root / CONFIG_NAME}: no classifier '{name}' (known: {known})")
        return self.classifiers[name]

    def source(self, name: str) -> SourceConfig:
        if name not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none"
            raise ConfigError(f"{self.root / CONFIG_NAME}: no source '{name}' (known: {known})")
        return self.sources[name]

    def vocabulary(self, name: str) -> VocabularyConfig:
        if name not in self.vocabularies:
            return VocabularyConfig(name=name)
        return self.vocabularies[name]


_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def _resolve_path(value: str, root: Path, paths: dict[str, str], where: str, key: str) -> Path:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        env = os.environ.get(f"ICONOSCOPE_{name.upper()}")
        if env:
            return env
        if name in paths:
            return paths[name]
        raise ConfigError(f"{where}: key '{key}' = {value!r}: unknown placeholder ${{{name}}} "
                          f"(define it in [paths] or set ICONOSCOPE_{name.upper()})")

    text = _PLACEHOLDER.sub(sub, value)
    p = Path(os.path.expanduser(text))
    if not p.is_absolute():
        p = (root / p).resolve()
    return p


def _str_tuple(table: dict[str, Any], key: str, where: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    value = table.get(key, list(default))
    if isinstance(value, str):
        return (value,)
    _expect(isinstance(value, list) and all(isinstance(v, str) for v in value), where, key, value,
            "a string or a list of strings")
    return tuple(value)


def parse_config(data: dict[str, Any], root: Path, origin: str = CONFIG_NAME) -> Config:
    """Validate a parsed TOML table. ``origin`` names the file in error messages."""
    top_allowed = {"collection", "paths", "store", "vocabularies", "sources", "classifiers", "serve", "embed"}
    _unknown_keys(data, top_allowed, origin)

    coll = _get(data, "collection", origin, dict, {})
    where = f"{origin} [collection]"
    _unknown_keys(coll, {"name", "base_iri", "languages", "default_backbone"}, where)
    name = _get(coll, "name", where, str, root.name or "collection")
    base_iri = _get(coll, "base_iri", where, str, f"https://example.org/{name}/")
    _expect(base_iri.startswith(("http://", "https://", "urn:")), where, "base_iri", base_iri,
            "an absolute IRI starting with http://, https:// or urn:")
    if not base_iri.endswith(("/", "#", ":")):
        base_iri += "/"
    languages = _str_tuple(coll, "languages", where, ("en",))
    default_backbone = _get(coll, "default_backbone", where, str, "builtin:smallcnn")

    paths_tbl = _get(data, "paths", origin, dict, {})
    paths = {k: str(v) for k, v in paths_tbl.items()}

    def path(value: str, where: str, key: str) -> Path:
        return _resolve_path(value, root, paths, where, key)

    # store
    st = _get(data, "store", origin, dict, {})
    where = f"{origin} [store]"
    _unknown_keys(st, {"kind", "path", "query_url", "update_url", "user", "password_env", "timeout_s"}, where)
    kind = _get(st, "kind", where, str, "oxigraph")
    _expect(kind in STORE_KINDS, where, "kind", kind, f"one of {', '.join(STORE_KINDS)}")
    store = StoreConfig(
        kind=kind,
        path=path(_get(st, "path", where, str, "graph"), where, "path") if kind == "oxigraph" else None,
        query_url=_get(st, "query_url", where, str, None),
        update_url=_get(st, "update_url", where, str, None),
        user=_get(st, "user", where, str, None),
        password_env=_get(st, "password_env", where, str, None),
        timeout_s=float(_get(st, "timeout_s", where, (int, float), 60.0)),
    )
    if kind == "sparql":
        _expect(bool(store.query_url), where, "query_url", store.query_url, "the endpoint's query URL")

    # vocabularies
    vocabs: dict[str, VocabularyConfig] = {}
    for vname, tbl in _get(data, "vocabularies", origin, dict, {}).items():
        where = f"{origin} [vocabularies.{vname}]"
        _expect(isinstance(tbl, dict), origin, f"vocabularies.{vname}", tbl, "a table")
        _unknown_keys(tbl, {"path", "format", "languages", "scheme"}, where)
        fmt = _get(tbl, "format", where, str, "skos")
        _expect(fmt in VOCAB_FORMATS, where, "format", fmt, f"one of {', '.join(VOCAB_FORMATS)}")
        p = _get(tbl, "path", where, str, None)
        vocabs[vname] = VocabularyConfig(
            name=vname, path=path(p, where, "path") if p else None, format=fmt,
            languages=_str_tuple(tbl, "languages", where, languages), scheme=_get(tbl, "scheme", where, str, None))

    # sources
    sources: dict[str, SourceConfig] = {}
    for sname, tbl in _get(data, "sources", origin, dict, {}).items():
        where = f"{origin} [sources.{sname}]"
        _expect(isinstance(tbl, dict), origin, f"sources.{sname}", tbl, "a table")
        skind = _get(tbl, "kind", where, str)
        _expect(skind in SOURCE_KINDS, where, "kind", skind, f"one of {', '.join(SOURCE_KINDS)}")
        fields = _get(tbl, "fields", where, dict, {})
        for k, v in fields.items():
            _expect(k in RECORD_FIELDS, f"{where}.fields", k, v, f"a field among {', '.join(RECORD_FIELDS)}")
            _expect(isinstance(v, str), f"{where}.fields", k, v, "a column name (string)")
        parser = _get(tbl, "subject_parser", where, str, "list")
        _expect(parser in SUBJECT_PARSERS, where, "subject_parser", parser, f"one of {', '.join(SUBJECT_PARSERS)}")
        images = _get(tbl, "images", where, str, None)
        mapping = _get(tbl, "mapping", where, str, None)
        known = {"kind", "path", "fields", "images", "vocabularies", "subject_parser", "subject_separator",
                 "subject_lang", "mapping"}
        sources[sname] = SourceConfig(
            name=sname, kind=skind, path=path(_get(tbl, "path", where, str), where, "path"),
            fields=dict(fields), images=path(images, where, "images") if images else None,
            vocabularies=_str_tuple(tbl, "vocabularies", where, tuple(vocabs)),
            subject_parser=parser, subject_separator=_get(tbl, "subject_separator", where, str, ";"),
            subject_lang=_get(tbl, "subject_lang", where, str, None),
            mapping=path(mapping, where, "mapping") if mapping else None,
            options={k: v for k, v in tbl.items() if k not in known})
        for vname in sources[sname].vocabularies:
            _expect(vname in vocabs, where, "vocabularies", vname,
                    f"a vocabulary declared under [vocabularies] ({', '.join(vocabs) or 'none declared'})")

    # classifiers
    classifiers: dict[str, ClassifierConfig] = {}
    for cname, tbl in _get(data, "classifiers", origin, dict, {}).items():
        where = f"{origin} [classifiers.{cname}]"
        _expect(isinstance(tbl, dict), origin, f"classifiers.{cname}", tbl, "a table")
        head = _get(tbl, "head", where, str, "linear")
        _expect(head in HEAD_KINDS, where, "head", head, f"one of {', '.join(HEAD_KINDS)}")
        folds = _get(tbl, "folds", where, int, 5)
        _expect(2 <= folds <= 20, where, "folds", folds, "an integer from 2 to 20")
        expand = _get(tbl, "expand", where, str, "narrower")
        _expect(expand in ("narrower", "none"), where, "expand", expand, "'narrower' or 'none'")
        vocab = _get(tbl, "vocabulary", where, str, None)
        if vocab is not None:
            _expect(vocab in vocabs, where, "vocabulary", vocab,
                    f"a vocabulary declared under [vocabularies] ({', '.join(vocabs) or 'none declared'})")
        cats = _str_tuple(tbl, "categories", where)
        targets = _str_tuple(tbl, "targets", where)
        _expect(bool(cats) or bool(targets) or head == "ensemble", where, "categories", list(cats),
                "a non-empty list of concepts (or 'targets' for a multimodal model)")
        known = {"vocabulary", "categories", "backbone", "head", "expand", "exclude", "related", "folds",
                 "sources", "inputs", "targets"}
        if head == "ensemble":
            _expect("backbone" not in tbl, where, "backbone", tbl.get("backbone"),
                    "no backbone: an ensemble reads its members' (see 'members')")
        classifiers[cname] = ClassifierConfig(
            name=cname, vocabulary=vocab, categories=cats,
            backbone=_get(tbl, "backbone", where, str, default_backbone), head=head, expand=expand,
            exclude=_str_tuple(tbl, "exclude", where), related=_get(tbl, "related", where, bool, False),
            folds=folds, sources=_str_tuple(tbl, "sources", where), inputs=_str_tuple(tbl, "inputs", where),
            targets=targets, params={k: v for k, v in tbl.items() if k not in known})
        for s in classifiers[cname].sources:
            _expect(s in sources, where, "sources", s, f"a declared source ({', '.join(sources) or 'none'})")

    for cname, cfg in list(classifiers.items()):
        if cfg.head == "ensemble":
            classifiers[cname] = _ensemble(cfg, classifiers, f"{origin} [classifiers.{cname}]")

    sv = _get(data, "serve", origin, dict, {})
    where = f"{origin} [serve]"
    _unknown_keys(sv, {"host", "port", "token_env", "token", "query_timeout_s"}, where)
    port = _get(sv, "port", where, int, 8000)
    _expect(0 < port < 65536, where, "port", port, "a TCP port from 1 to 65535")
    serve = ServeConfig(host=_get(sv, "host", where, str, "127.0.0.1"), port=port,
                        token_env=_get(sv, "token_env", where, str, "ICONOSCOPE_TOKEN"),
                        token=_get(sv, "token", where, str, None),
                        query_timeout_s=float(_get(sv, "query_timeout_s", where, (int, float), 10.0)))

    return Config(root=root, name=name, base_iri=base_iri, languages=languages, store=store,
                  vocabularies=vocabs, sources=sources, classifiers=classifiers, serve=serve,
                  default_backbone=default_backbone, raw=data)


def load_config(root: Path) -> Config:
    """Read ``root/iconoscope.toml``; a missing or malformed file is a ConfigError naming it."""
    root = Path(root).resolve()
    path = root / CONFIG_NAME
    if not path.exists():
        raise ConfigError(f"{path}: no workspace here (run 'iconoscope init {root}' or pass -w DIR)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    return parse_config(data, root, origin=str(path))


def _ensemble(cfg: ClassifierConfig, classifiers: dict[str, ClassifierConfig], where: str) -> ClassifierConfig:
    """Check an ensemble's ``members`` (and ``weights``) and give it its members' categories: it averages trained
    classifiers of the same label set, so a category list of its own could only disagree with theirs."""
    members = cfg.params.get("members")
    _expect(isinstance(members, list) and len(members) >= 2 and all(isinstance(m, str) for m in members),
            where, "members", members, "a list of two or more classifier names")
    _expect(len(set(members)) == len(members), where, "members", members, "distinct classifier names")
    for m in members:
        _expect(m in classifiers, where, "members", m, f"a declared classifier ({', '.join(sorted(classifiers))})")
        _expect(classifiers[m].head in ENSEMBLE_MEMBER_HEADS, where, "members", m,
                f"a classifier whose head is {', '.join(ENSEMBLE_MEMBER_HEADS)} (its head is {classifiers[m].head!r})")
    weights = cfg.params.get("weights", [1.0] * len(members))
    _expect(isinstance(weights, list) and len(weights) == len(members)
            and all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights)
            and sum(weights) > 0, where, "weights", weights,
            f"{len(members)} non-negative numbers, one per member, not all 0")
    first = classifiers[members[0]]
    for m in members[1:]:
        other = classifiers[m]
        _expect((other.vocabulary, other.categories, other.expand, other.exclude, other.related, other.sources)
                == (first.vocabulary, first.categories, first.expand, first.exclude, first.related, first.sources),
                where, "members", m, f"a classifier with the same vocabulary, categories, expand, exclude, related "
                f"and sources as {members[0]!r} (an ensemble averages scores of one label set)")
    if cfg.categories:
        _expect(cfg.categories == first.categories, where, "categories", list(cfg.categories),
                f"the members' categories, in their order, or nothing (they are taken from {members[0]!r})")
    return replace(cfg, vocabulary=first.vocabulary, categories=first.categories, expand=first.expand,
                   exclude=first.exclude, related=first.related, sources=first.sources, backbone="",
                   folds=first.folds)
