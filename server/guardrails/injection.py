"""Prompt-injection / jailbreak detection on input, and system-prompt leak detection on output.

Input: the message is looked at through several *views* (NFKC + zero-width stripped, homoglyphs and
leetspeak folded, spaced-out letters joined, reversed, base64/rot13 payloads decoded) and each view is
scanned for weighted signals. Signals combine as independent evidence, ``1 - prod(1 - w)``, and the
message is blocked at ``threshold`` (0.5). Weights are set so one *ambiguous* cue (a bare "pretend",
"DAN", "from now on", "I'm the admin") stays under the threshold while a strong cue ("ignore previous
instructions", "reveal your system prompt", a fake ``### system`` delimiter) or two weak ones cross it:
customers write "ignore the previous volume, I want vol 5" and "what's the system for pre-orders?".

Output: an answer that carries the prompt canary or shares long word n-grams with the system prompt is
a leak and must be blocked.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass

from server.guardrails.base import GuardrailAction
from server.guardrails.injection_model import JailbreakModel, default_model
from server.settings import GuardrailSettings

NAME = "prompt_injection"

_ZERO_WIDTH_RE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad\u034f\u180e]")
_HOMOGLYPHS = str.maketrans(
    {
        "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y",
        "\u0445": "x", "\u0456": "i", "\u0458": "j", "\u0455": "s", "\u04bb": "h", "\u0501": "d",
        "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0397": "H", "\u0399": "I", "\u039a": "K",
        "\u039c": "M", "\u039d": "N", "\u039f": "O", "\u03a1": "P", "\u03a4": "T", "\u03a7": "X",
        "\u03bf": "o", "\u03b1": "a",
        "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K", "\u041c": "M", "\u041d": "H",
        "\u041e": "O", "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0425": "X", "\u0405": "S",
        "\u0406": "I", "\u0408": "J", "\u03b9": "i", "\u03ba": "k", "\u03bd": "v", "\u03c1": "p",
        "\u03c5": "u", "\u0261": "g", "\u0251": "a", "\u1d0f": "o",
    }
)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_SPACED_RE = re.compile(r"\b(?:[A-Za-z](?: {1,3}|[.\-_*])){3,}[A-Za-z]\b")
_B64_RE = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RE = re.compile(r"(?:(?:0x|\\x)?[0-9A-Fa-f]{2}[ :,]?){8,}")
_PCT_RE = re.compile(r"%[0-9A-Fa-f]{2}")
_PLUS_RE = re.compile(r"(?:[A-Za-z0-9]+\+){3,}[A-Za-z0-9]+")  # form-encoded spaces: ignore+all+previous+...
#: Bounds on decoding, so a hostile message cannot make the screen expensive: only the first
#: ``MAX_DECODE_CHARS`` characters are searched for encoded segments, at most ``MAX_SEGMENTS`` segments are
#: decoded per view (each at most ``MAX_DECODE_CHARS``), and decoded text is decoded again at most
#: ``MAX_DEPTH - 1`` more times (base64 of a URL-encoded string), with ``MAX_DECODED`` views in all.
MAX_DECODE_CHARS = 6000
MAX_SEGMENTS = 8
MAX_DEPTH = 2
MAX_DECODED = 12
#: Very common English words: a rot13 view is kept when it reads more like English than the message does.
_COMMON = frozenset("the you and to a of is your are i me what all be that it this in for not with do now "
                    "any will as an from no say print tell give system prompt ignore instructions".split())

# --- signal table: (name, weight, pattern). Patterns run on lower-cased views unless (?-i:...) is used.
_IGNORE_VERBS = (
    r"ignore|ignoring|disregard|forget|skip|override|bypass|drop|abandon|neglect|discard|set aside|"
    r"pay no (?:attention|heed) to|cancel|void|revoke|"
    r"(?:do not|don't|stop) (?:follow(?:ing)?|obey(?:ing)?)|throw away|set aside|erase|delete"
)
_RULE_NOUNS = (
    r"instructions?|rules|prompts?|directions|guidelines|guardrails?|constraints|programming|restrictions|"
    r"directives|policies|filters?|commands|training|guidance|system message|system prompt|orders you were given|"
    r"safety (?:rules|settings|guidelines)|limitations|content polic(?:y|ies)"
)
_LEAK_TARGETS_STRONG = (
    r"system ?prompt|initial prompt|hidden prompt|original prompt|pre-?prompt|developer (?:message|prompt)|"
    r"system message|system instructions?|your (?:hidden |secret |original |initial )?instructions|"
    r"the (?:hidden|secret|original|initial|system) instructions|the instructions (?:above|you were given|you got)|"
    r"instructions you were given|text above|everything above|words above|what you were told|"
    r"prompt (?:you were|above)|your (?:secret|hidden) (?:rules|instructions|prompt)|your configuration|"
    r"canary|meta-?prompt"
)
_ASK_VERBS = (
    r"reveal|show|print|display|repeat|output|tell me|give me|what(?:'s| is| are| were)|share|leak|dump|"
    r"spell out|write out|recite|copy|paste|quote|echo|list|return|expose|disclose|translate|summari[sz]e|"
    r"read (?:me|back|out)|send me"
)
_SIGNALS: tuple[tuple[str, float, str], ...] = (
    ("override_instructions", 0.9,
     rf"\b(?:{_IGNORE_VERBS})\b[^.!?\n]{{0,40}}?\b(?:all |any |the |your |my |of |these |those |previous |prior |"
     rf"above |earlier |preceding |initial |original |system |safety |existing |current |every )*"
     rf"(?:{_RULE_NOUNS})\b"),
    ("instructions_cancelled", 0.85,
     r"\b(?:your|all|the|any) (?:previous |prior |earlier |old |original |current )?(?:instructions|rules|"
     r"guidelines|directives|programming)\b (?:are|have been|were|is) (?:now )?(?:cancel+ed|void|revoked|"
     r"overridden|replaced|obsolete|suspended|lifted|no longer (?:valid|active|in effect|apply))"),
    ("forget_everything", 0.75,
     r"\b(?:forget|ignore|disregard) (?:everything|all of that|all that|what) (?:you (?:were|have been) told|"
     r"(?:written |said |stated )?(?:above|before|earlier|so far)|you know)"),
    ("reveal_system_prompt", 0.9, rf"\b(?:{_ASK_VERBS})\b[^.!?\n]{{0,40}}?\b(?:{_LEAK_TARGETS_STRONG})\b"),
    ("probe_configuration", 0.85,
     r"\b(?:prompt|instructions|rules|text|message)s? (?:that|which) (?:configures?|controls?|governs?|defines?|"
     r"programs?|shapes?) (?:you|your behaviou?r)\b|\bwhat (?:instructions|rules|guidelines|prompt) did "
     r"(?:the |your )?(?:developers?|creators?|company|they|openai|anthropic|someone) give you\b|\b(?:exact|full|"
     r"complete|entire|original) (?:wording|text|content|contents) of (?:your|the) (?:configuration|prompt|"
     r"instructions|rules|system (?:prompt|message))\b"),
    ("reveal_rules", 0.6,
     r"\b(?:reveal|print|repeat|dump|leak|recite|disclose|expose|spell out|output)\b[^.!?\n]{0,30}?"
     r"\b(?:your|the assistant's|the bot's) (?:rules|guidelines|policies|prompt|instructions)\b"),
    ("repeat_above", 0.8,
     r"\b(?:repeat|print|output|copy|return)\b[^.!?\n]{0,30}\b(?:above|before this|verbatim|word for word)\b"
     r"|\bstarting with ['\"]?you are\b|\bbegin(?:ning)? with ['\"]?you are mangaassist"),
    ("new_instructions", 0.4,
     r"\bnew (?:instructions|rules|directives|task|objective|role)\s*(?::|are|is)|\byour (?:new|real|true) "
     r"(?:instructions|task|purpose|role|goal|directive)s?\b|\b(?:updated|revised) system (?:instructions|prompt)"),
    ("from_now_on", 0.3,
     r"\bfrom now on\b|\bhenceforth\b|\bfor the rest of (?:this|the) conversation\b"
     r"|\bdesde ahora\b|\bà partir de maintenant\b|\bab jetzt\b|\bd'ora in poi\b"),
    ("you_are_now", 0.5,
     r"\byou are (?:now|no longer)\b|\byou're (?:now|no longer)\b|\byou will now (?:act|behave|respond|answer)"
     r"|\b(?:stop|quit) being (?:mangaassist|an? (?:assistant|shopping assistant|ai))\b"
     r"|\byou (?:now )?work for me(?: now)?\b|\byour (?:only )?(?:job|task|purpose) (?:now )?is to\b"),
    ("dan_persona", 0.95,
     r"\bdo anything now\b|\b(?:you are|you're|act as|become|enable|activate|be|as|called|named|mode:?)\s+"
     r"(?:now\s+)?(?:a\s+)?(?-i:(?:DAN|STAN|DUDE|AIM|AntiGPT|BetterDAN|BasedGPT))\b|(?-i:\b(?:DAN|STAN|DUDE))\s+"
     r"(?:mode|prompt|jailbreak|persona)|\bevil confidant\b|\banti-?gpt\b|\bbetter-?dan\b|\bbasedgpt\b"),
    ("dan_bare", 0.3, r"(?-i:(?<!DAN DA )\bDAN\b(?! DA DAN))"),
    ("special_mode", 0.8,
     r"\b(?:developer|dev|god|sudo|debug|admin|unrestricted|maintenance|jailbreak|jailbroken|unfiltered|"
     r"uncensored ai|opposite|chaos|evil|root) mode\b|\benable[ds]? (?:the )?(?:developer|debug|admin) "
     r"(?:mode|access|options)\b"),
    ("jailbreak_word", 0.8,
     r"\bjailbr(?:oken|eaking) (?:ai|model|assistant|bot|mode|version|you|yourself)\b|\bjailbreak (?:prompt|mode|"
     r"yourself|you|the (?:ai|model|bot|assistant|system))\b|\byou (?:are|have been) jailbr(?:oken|eaked)\b"),
    ("jailbreak_bare", 0.25, r"\bjailbr(?:eak|oken|eaking)\b"),
    ("roleplay_unrestricted", 0.85,
     r"\b(?:pretend|act|roleplay|role-play|role play|behave|imagine|simulate|play the role|you are)\b"
     r"[^.!?\n]{0,60}?\b(?:unrestricted|unfiltered|uncensored (?:ai|assistant|model|bot|chatbot)|unlimited ai|"
     r"evil|amoral|immoral|without (?:any )?(?:rules|restrictions|filters|limits|limitations|guidelines|ethics|"
     r"morals|censorship)|(?:has|have|with) no (?:rules|restrictions|filters|limits|limitations|guidelines|"
     r"ethics|morals)|another (?:ai|assistant|model|chatbot)|a different (?:ai|assistant|model|chatbot)|"
     r"an? ai (?:that|who|with(?:out)?)|free from|not bound by|(?:my )?(?:deceased |dead |late )?grand(?:ma|mother)"
     r" who)\b"),
    ("roleplay_bare", 0.25,
     r"\b(?:pretend (?:to be|you are|you're|that you)|act as|roleplay as|role-play as|role play as|"
     r"simulate (?:a|an|being)|play the role of|let's play a game|imagine you are|imagine that you)\b"),
    ("no_rules", 0.35,
     r"\b(?:no|zero|without any|without|free of|free from|ignore all) (?:rules|restrictions|filters|limits|limitations|"
     r"guidelines|ethics|morals|censorship|content policy|safety)\b|\bno longer (?:bound|restricted|limited)\b"
     r"|\bnot bound by\b|\bunrestricted\b|\bunfiltered\b"
     r"|\bwithout (?:checking|following|regard to|consulting) (?:the |any |your )?(?:polic(?:y|ies)|rules|guidelines)\b"),
    ("fake_delimiter", 0.75,
     r"#{2,}\s*(?:system|instructions?|admin|developer|new (?:rules|instructions))\b|\[(?:system|inst|/inst|admin)\]"
     r"|<\|?(?:system|im_start|im_end|endoftext|assistant)\|?>|</s>|<<sys>>|\bend of (?:user )?(?:input|prompt)\b"
     r"|</?(?:system|instructions|customer_message|context|user)>|^\s*(?:system|assistant|developer)\s*:"
     r"|```\s*system|-{3,}\s*(?:system|begin|end)\b|={3,}\s*(?:system|new)"),
    ("authority_claim", 0.4,
     r"\b(?:i am|i'm|this is|as) (?:your|the|an?) (?:developer|creator|admin|administrator|owner|programmer|"
     r"operator|engineer|openai|anthropic|system administrator|sysadmin)\b|\bauthori[sz]ed (?:override|access|"
     r"admin|developer)|\badmin(?:istrator)? override\b|\boverride code\b|\bsecurity clearance\b"),
    ("safety_bypass", 0.85,
     r"\b(?:bypass|disable|turn off|deactivate|remove|switch off|circumvent|evade|get around|shut off|lift)\b"
     r"[^.!?\n]{0,25}?\b(?:your |the |all |any )*(?:safety|filters?|guardrails?|restrictions|content (?:filter|"
     r"policy|moderation)|censorship|safeguards|moderation|limitations|ethical guidelines)\b"),
    ("encoded_payload", 0.4,
     r"\b(?:decode|decrypt|base64|rot13|rot-13|hex(?:adecimal)?|reverse(?:d)? (?:this|the following|text))\b"
     r"[^.!?\n]{0,60}?\b(?:follow|execute|obey|do what|run|carry out|instructions?|and then|then do|comply)\b"),
    ("exfiltration", 0.6,
     r"\b(?:list|show|give me|send|dump|export|print)\b[^.!?\n]{0,25}?\b(?:all|every|other)\b[^.!?\n]{0,15}?"
     r"\b(?:customers?|users?|people|members?)(?:'s|s')? ?(?:\w+ )?(?:data|emails?|orders|addresses|phone numbers|"
     r"credit cards?|card numbers|details|information|accounts?)\b|\b(?:api keys?|access keys?|secret keys?|"
     r"credentials|passwords?|database schema|environment variables)\b"),
    ("code_injection", 0.6,
     r"(?:';|\";)\s*(?:drop|delete|insert|update|select)\b|\bunion select\b|\bdrop table\b|<script\b|"
     r"\{\{.*\}\}|\$\{.*\}|\bos\.system\b|\b__import__\b|\bexec\(|\beval\("),
    ("pwned_probe", 0.8, r"\bi have been pwned\b|\bpwned\b|\bsay ['\"]?hacked['\"]?"),
    ("respond_only", 0.35,
     r"\b(?:respond|reply|answer) (?:only )?(?:with|in) (?:only )?(?:\"|'|yes|the word|json containing your)|"
     r"\bsay ['\"]?(?:i have been pwned|pwned|hacked|i am free)\b|\bpwned\b"),
    # --- multilingual variants of the strong cues
    ("override_multilingual", 0.9,
     r"\b(?:ignora|ignore[zr]?|ignoriere|ignorieren|olvida|oublie[zr]?|vergiss|esque[cç]a|dimentica|negeer)\b"
     r"[^.!?\n]{0,40}?\b(?:instrucciones|instructions|anweisungen|instruktionen|regeln|instru[cç][õo]es|"
     r"istruzioni|reglas|r[eè]gles|regras|regole|consignes|indicaciones|instructies)\b"
     r"|игнорир\w*[^.!?\n]{0,40}?(?:инструкци|правил)|забудь\w*[^.!?\n]{0,40}?(?:инструкци|правил)"
     r"|(?:以前|前|上記|これまで|上|先|すべて)の?(?:指示|命令|指令|ルール)を?(?:すべて)?(?:無視|忘れ)"
     r"|忽略|无视(?:之前|以前|上面|所有|先前)?|(?:忘记|忘掉)(?:之前|以前|所有|你的)"
     r"|(?:이전|모든|위의)\s*(?:지시|명령|지침)\w*\s*무시"),
    ("reveal_multilingual", 0.9,
     r"\b(?:revela|muestra|mu[eé]strame|dime|r[eé]v[eè]le[zr]?|affiche[zr]?|montre[zr]?|zeige?|zeig|verrate|"
     r"gib|revele|mostre|mostra|rivela|dimmi)\b[^.!?\n]{0,40}?\b(?:prompt|instrucciones|instructions|"
     r"anweisungen|instru[cç][õo]es|istruzioni|consignes)\b[^.!?\n]{0,20}?(?:sistema|syst[eè]me|system|"
     r"inicial|initial|originales|original|secret|ocultas|cach[ée]es|geheim)?"
     r"|(?:システム|初期)プロンプト|系统提示|系統提示|提示词|시스템\s*프롬프트|системн\w* (?:промпт|подсказк|инструкци)"),
    ("mode_multilingual", 0.8,
     r"modo (?:desarrollador|desenvolvedor|sviluppatore|dios)|mode d[ée]veloppeur|entwicklermodus|"
     r"開発者モード|开发者模式|制限を解除|解除(?:所有)?限制|режим разработчика|개발자 모드"),
)
_COMPILED = tuple((name, w, re.compile(p, re.IGNORECASE | re.MULTILINE)) for name, w, p in _SIGNALS)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return _ZERO_WIDTH_RE.sub("", text)


def _strip_marks(text: str) -> str:
    """Combining marks removed ("i̷g̷n̷o̷r̷e̷" -> "ignore"); ASCII text is returned as is (the common case)."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def _join_run(run: str) -> str:
    run = re.sub(r" {2,}", "\x00", run)  # several spaces separate words
    if re.search(r"[.\-_*]", run):  # "s.h.o.w y.o.u.r": the dots join letters, single spaces split words
        run = re.sub(r"[.\-_*]", "", run)
    else:  # "i g n o r e   p r e v": single spaces join letters
        run = run.replace(" ", "")
    return run.replace("\x00", " ")


def _join_spaced(text: str) -> str:
    return _SPACED_RE.sub(lambda m: _join_run(m.group(0)), text)


def _printable_text(raw: bytes) -> str | None:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(decoded) < 4 or not any(ch.isalpha() for ch in decoded):
        return None
    if sum(ch.isprintable() or ch.isspace() for ch in decoded) / len(decoded) <= 0.95:
        return None
    return decoded


def _english_words(text: str) -> int:
    return sum(w in _COMMON for w in re.findall(r"[a-z]+", text.lower()))


def _decode_once(text: str) -> list[str]:
    """Every encoded segment of ``text`` (its first MAX_DECODE_CHARS characters) that decodes to text."""
    text = text[:MAX_DECODE_CHARS]
    out: list[str] = []
    for m in _B64_RE.finditer(text):
        if len(out) >= MAX_SEGMENTS:
            break
        token = m.group(0)
        if token.isalpha() and (token.islower() or token.isupper()):
            continue  # a long plain word, not base64
        if len(token) >= 16 and re.fullmatch(r"[0-9A-Fa-f]+", token) and len(token) % 2 == 0:
            continue  # hex, decoded below
        token = token.replace("-", "+").replace("_", "/")
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=False)
        except (binascii.Error, ValueError):
            continue
        decoded = _printable_text(raw)
        if decoded:
            out.append(decoded)
    for m in _HEX_RE.finditer(text):
        if len(out) >= MAX_SEGMENTS:
            break
        digits = re.sub(r"0x|\\x|[ :,]", "", m.group(0))
        if len(digits) % 2:
            digits = digits[:-1]
        try:
            decoded = _printable_text(bytes.fromhex(digits))
        except ValueError:
            continue
        if decoded:
            out.append(decoded)
    if len(_PCT_RE.findall(text)) >= 3 or _PLUS_RE.search(text):
        unquoted = urllib.parse.unquote_plus(text)
        if unquoted != text:
            out.append(unquoted)
    rot = codecs.decode(text, "rot_13")
    if re.search(r"rot-?13", text, re.IGNORECASE) or _english_words(rot) > max(2, _english_words(text)):
        out.append(rot)
    return out


def _decoded_payloads(text: str) -> list[str]:
    """Decoded views of ``text``: its encoded segments, and theirs again (MAX_DEPTH levels, MAX_DECODED views)."""
    out: list[str] = []
    frontier = [text]
    for _ in range(MAX_DEPTH):
        nxt = []
        for view in frontier:
            for decoded in _decode_once(view):
                if decoded not in out and len(out) < MAX_DECODED:
                    out.append(decoded)
                    nxt.append(decoded)
        frontier = nxt
    return out


def views(text: str) -> tuple[list[str], list[str]]:
    """The message as the detector reads it: (surface views, decoded payloads).

    Surface: NFKC with zero-width characters removed, homoglyphs folded and combining marks stripped,
    leetspeak folded, spaced letters joined, reversed. Decoded (bounded, see MAX_DECODE_CHARS): base64 and
    URL-safe base64 tokens, hex runs, URL percent-encoding, rot13 (when the message names it or its rot13
    reads more like English), and each of those decoded once more; each decoded view is NFKC-normalised
    and homoglyph-folded too.
    """
    base = _normalise(text)
    folded = _strip_marks(base.translate(_HOMOGLYPHS))
    leet = folded.lower().translate(_LEET)
    surface = [base, folded, leet, _join_spaced(folded), base[::-1]]
    decoded = [_strip_marks(_normalise(d).translate(_HOMOGLYPHS)) for d in _decoded_payloads(base)]
    decoded += [d.lower().translate(_LEET) for d in decoded if re.search(r"[a-z][0-9@$][a-z]", d, re.I)]
    return surface, [d for d in dict.fromkeys(decoded) if d not in surface]


def model_views(text: str, surface: list[str] | None = None, decoded: list[str] | None = None) -> list[str]:
    """What the learned jailbreak model reads: the message homoglyph- and leetspeak-folded, lower-cased (digits
    read as the letters they stand for: "l00k" and "look" are the same word to it), and each decoded view so folded."""
    if surface is None or decoded is None:
        surface, decoded = views(text)
    return list(dict.fromkeys([surface[2], *(d.lower().translate(_LEET) for d in decoded)]))


@dataclass(frozen=True)
class InjectionVerdict:
    score: float
    signals: tuple[str, ...]
    blocked: bool

    @property
    def action(self) -> GuardrailAction:
        return GuardrailAction(NAME, "blocked", f"score={self.score:.2f} signals={','.join(self.signals)}")


#: The learned model's evidence when its probability reaches its threshold (alone it crosses the default
#: ``guardrails.injection_threshold``, 0.5).
LEARNED_WEIGHT = 0.9


class InjectionDetector:
    name = NAME

    def __init__(self, threshold: float = GuardrailSettings.injection_threshold, model: JailbreakModel | None | bool = True) -> None:
        """``model``: True = the built default (``.build/guardrails/injection_model.json``), False/None = the
        patterns only, or a loaded :class:`JailbreakModel`."""
        self.threshold = threshold
        self.model = default_model() if model is True else (model or None)

    def score(self, text: str) -> InjectionVerdict:
        surface, decoded = views(text)
        hits: dict[str, float] = {}
        for view in dict.fromkeys(surface):
            for name, weight, pattern in _COMPILED:
                if name not in hits and pattern.search(view):
                    hits[name] = weight
        hidden = False
        for view in decoded:
            for name, weight, pattern in _COMPILED:
                if name not in hits and pattern.search(view):
                    hits[name] = weight
                    hidden = True
        if hidden:  # an instruction smuggled inside an encoding is evidence in itself
            hits["obfuscated"] = 0.3
        if self.model is not None:
            if any(self.model.probability(v) >= self.model.threshold for v in model_views(text, surface, decoded)):
                hits["learned_jailbreak"] = LEARNED_WEIGHT
        remaining = 1.0
        for w in hits.values():
            remaining *= 1.0 - w
        score = round(1.0 - remaining, 4)
        signals = tuple(sorted(hits, key=lambda n: -hits[n]))
        return InjectionVerdict(score, signals, score >= self.threshold)


# --- output: system prompt leak -----------------------------------------------------------------

_WORD_RE = re.compile(r"[a-z0-9]+")


def _shingles(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD_RE.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class LeakDetector:
    """Flags answers that quote the system prompt (canary, or >= ``min_shared`` shared word 8-grams)."""

    name = "prompt_leak"

    def __init__(self, secret_texts: tuple[str, ...], canaries: tuple[str, ...] = (), n: int = 8,
                 min_shared: int = 1) -> None:
        self._n = n
        self._min_shared = min_shared
        self._canaries = tuple(c.lower() for c in canaries if c)
        self._shingles: set[tuple[str, ...]] = set()
        for t in secret_texts:
            self._shingles |= _shingles(t, n)

    def leaked(self, answer_text: str) -> str | None:
        low = answer_text.lower()
        for c in self._canaries:
            if c in low:
                return "canary"
        shared = len(_shingles(answer_text, self._n) & self._shingles)
        if shared >= self._min_shared:
            return f"{shared} shared {self._n}-grams with the system prompt"
        return None
