"""Replace personal data in free-text feedback with typed placeholders.

``redact(text)`` runs before a text is embedded, indexed or logged. Detectors see a
normalised view of the text (NFKC, every Unicode space a plain space, invisible format
characters such as zero-width spaces and soft hyphens removed); their spans are mapped
back to the original, so the output keeps the resident's characters outside the
placeholders. Detectors run in a fixed priority order and a later detector never takes
characters an earlier one already claimed: EMAIL, IBAN (before PHONE: an IBAN is a long
digit run), HETU, PNR and ID (before PHONE: ``010101-123`` also looks like a number),
PHONE, ADDRESS and last NAME (the least certain).

Placeholders: ``[HETU]`` ``[PNR]`` ``[ID]`` ``[PHONE]`` ``[EMAIL]`` ``[IBAN]`` ``[ADDRESS]``
``[NAME]``. ``[PNR]`` is a Swedish personnummer or samordningsnummer with a valid check
digit, written with its separator or with the century (``811218-9876``, ``19811218-9876``).

``[ID]`` is our choice for a HETU lookalike whose check character (or individual
number, or calendar date) is wrong but whose shape ``DDMMYY<sign>NNNX`` and date are
plausible. Residents mistype their own identity code; such a string is still very
likely a real person's code with one wrong character, so it is removed, but it is not
counted as a HETU.

Names: a first name from ``data/first_names.json`` (any listed case form) followed by
capitalised surname(s), a capitalised word followed by a surname of a typical Finnish
or Swedish shape (Larsson, Nieminen), a role or title followed by name(s) in any case
(lower case only for a known first name or a typical surname shape), a self-introduction
(``nimeni on``, ``jag heter``, ``my name is``, ``c/o``) followed by name(s), a greeting or
sign-off followed by capitalised name(s), or a first name alone unless that name is also
an ordinary word or place (``ambiguous``). Place,
unit and organisation words (Turun, Salon, Tyks, Kela ...) are never taken as a name.
For a title, only the name is replaced: ``hoitaja [NAME]`` keeps what role was meant.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Callable

__all__ = ["PLACEHOLDER_TYPES", "Redaction", "redact", "is_valid_hetu", "iban_is_valid"]

PLACEHOLDER_TYPES: tuple[str, ...] = ("HETU", "PNR", "ID", "PHONE", "EMAIL", "IBAN", "ADDRESS", "NAME")


@dataclass(frozen=True)
class Redaction:
    """The redacted text, how many items of each type were replaced, and where."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)
    # (type, start, end) in the ORIGINAL text, sorted by start.
    spans: list[tuple[str, int, int]] = field(default_factory=list)


# --- HETU -------------------------------------------------------------------------

HETU_CHECK_CHARS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
CENTURY_BY_SIGN: dict[str, int] = {"+": 1800, "-": 1900, "U": 1900, "V": 1900, "W": 1900, "X": 1900,
                                   "Y": 1900, "A": 2000, "B": 2000, "C": 2000, "D": 2000, "E": 2000,
                                   "F": 2000}
# Word processors turn "-" into a dash; the code is still the same code.
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2212"

# A Finnish clitic or case ending may be glued to the code ("131052-308Tkin", "...308T:n");
# it stays in the output, only the code is replaced.
_CLITIC_AFTER = r"(?=(?::?[a-zåäö]{1,6})?(?!\w))"
_HETU_SHAPE = re.compile(
    rf"(?<!\w)(\d{{2}})(\d{{2}})(\d{{2}})([-+{_DASHES}ABCDEFUVWXYabcdefuvwxy])(\d{{3}})([0-9A-Za-z]){_CLITIC_AFTER}"
)
# The same code typed without its century sign: counted only when the check character fits.
_HETU_COMPACT = re.compile(rf"(?<![\w+-])(\d{{2}})(\d{{2}})(\d{{2}})(\d{{3}})([0-9A-Za-z]){_CLITIC_AFTER}")


def _hetu_parts_valid(dd: str, mm: str, yy: str, sign: str, nnn: str, check: str) -> bool:
    sign = "-" if sign in _DASHES else sign.upper()
    century = CENTURY_BY_SIGN.get(sign)
    if century is None or not 2 <= int(nnn) <= 999:
        return False
    try:
        date(century + int(yy), int(mm), int(dd))
    except ValueError:
        return False
    return HETU_CHECK_CHARS[int(dd + mm + yy + nnn) % 31] == check.upper()


def is_valid_hetu(s: str) -> bool:
    """True if ``s`` (surrounding whitespace ignored, any case) is a valid Finnish HETU.

    Checks the century sign (+ - A-F U-Y), the calendar date, the individual number
    (002-899, or 900-999 for temporary codes) and the check character.
    """
    m = _HETU_SHAPE.fullmatch(s.strip())
    return bool(m) and _hetu_parts_valid(*m.groups())


def _plausible_date(dd: str, mm: str) -> bool:
    return 1 <= int(dd) <= 31 and 1 <= int(mm) <= 12


def _compact_hetu_valid(dd: str, mm: str, yy: str, nnn: str, check: str) -> bool:
    # A ten-digit run starting with 0 is a domestic phone number; leave it to PHONE.
    if check.isdigit() and dd.startswith("0"):
        return False
    return any(_hetu_parts_valid(dd, mm, yy, sign, nnn, check) for sign in ("-", "A", "+"))


# --- Swedish personnummer --------------------------------------------------------------

# YYMMDD-NNNC or YYYYMMDDNNNC ("+" for a person over 100); the day is +60 for a
# samordningsnummer. Ten digits without a separator are left alone: too many phone
# numbers pass the Luhn check by chance.
_PNR = re.compile(r"(?<![\w+-])(?:(?:18|19|20)(\d{6})[-+]?|(\d{6})[-+])(\d{4})(?!\w)")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _pnr_spans(text: str) -> list[tuple[int, int]]:
    out = []
    for m in _PNR.finditer(text):
        ymd = m.group(1) or m.group(2)
        mm, dd = int(ymd[2:4]), int(ymd[4:6])
        if 1 <= mm <= 12 and (1 <= dd <= 31 or 61 <= dd <= 91) and _luhn_ok(ymd + m.group(3)):
            out.append(m.span())
    return out


# --- IBAN -------------------------------------------------------------------------

# Lengths from the SWIFT IBAN registry; an unknown country code is not an IBAN (this
# keeps RF creditor references, which share the checksum, out).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AX": 18, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30,
    "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
    "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

# Groups separated by a space or a hyphen (some banks print FI21-1234-5600-0007-85).
_IBAN_CANDIDATE = re.compile(r"(?<!\w)[A-Za-z]{2}[ -]?\d{2}(?:[ -]?[A-Za-z0-9]){11,32}(?!\w)")


def iban_is_valid(s: str) -> bool:
    """True if ``s`` (spaces and hyphens ignored, any case) is an IBAN of the right length with mod-97 == 1."""
    compact = s.replace(" ", "").replace("-", "").upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit():
        return False
    if not compact[4:].isalnum() or not compact.isascii():
        return False
    digits = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def _iban_spans(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos = 0
    while m := _IBAN_CANDIDATE.search(text, pos):
        cand = m.group()
        # The candidate may run into a following word, number or IBAN: try it whole, then
        # cut back one space-separated group at a time, and go on searching after the cut.
        ends = [len(cand)] + [i for i in range(len(cand) - 1, 3, -1) if cand[i] in " -"]
        pos = m.start() + 1
        for end in ends:
            if iban_is_valid(cand[:end]):
                out.append((m.start(), m.start() + end))
                pos = m.start() + end
                break
    return out


# --- EMAIL ------------------------------------------------------------------------

# "@" or an obfuscated "(at)" / "[at]" / "{at}", and "." or "(dot)" / "(piste)" / "(punkt)".
_AT = r"(?:@|\s?[(\[{]\s?(?i:at|ät)\s?[)\]}]\s?)"
_DOT = r"(?:\.|\s?[(\[{]\s?(?i:dot|piste|punkt)\s?[)\]}]\s?)"
_AT_WORD = re.compile(r"[(\[{]\s?(?i:at|ät)\s?[)\]}]")
_EMAIL = re.compile(rf"(?<!\w)[\w.+%-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)*{_DOT}[A-Za-z]{{2,24}}(?![\w-])")

# --- PHONE ------------------------------------------------------------------------

# International: +CC or 00CC, optional "(0)", then digit groups. "+" followed by eight or
# more digits is a phone even when glued to a word.
# The country code may be in parentheses ("(+358) 40 ...").
_PHONE_INTL = re.compile(
    r"(?<![\d+])(?:\(\+\d{1,3}\)|\+\d{1,3}|(?<!\w)00(?=[1-9])\d{1,3})"
    r"(?:[ -]?\(0\))?[ -]?\(?\d{1,4}\)?(?:[ -]?\d{2,5}){0,5}(?![\w])"
)
# Domestic: a leading 0 area or mobile prefix, optionally in parentheses, then groups of
# 2-4 digits separated by at most one space or hyphen. No "." or ":" separators, so
# dates (12.10.2026) and times (14.30) never qualify; a leading 0 keeps out prices,
# years and postal codes; a currency sign after the number makes it a price.
# A "/" after the prefix ("040/1234567") counts only with at least five digits after it,
# so case numbers (0123/2026) stay. A ":" counts before the number after a word
# ("puhelin:0401234567") but not after a digit (times). UK area codes have up to five digits.
_PHONE_DOMESTIC = re.compile(
    r"(?<![\w+.,/])(?<!\d:)(?:\(0[1-9]\d{0,3}\)|0\d{1,4})(?: ?/ ?\d{5,8}|(?:[ -]?\d{2,4}){1,4})"
    r"(?![\w])(?![.,]\d)"
)
_NOT_PRICE_AFTER = re.compile(r"\s?(?:€|e(?![\w-])|eur|euro|kr\b|sek\b|%)", re.IGNORECASE)
_GROUP_SPLIT = re.compile(r"[ -](?=[^ -]*$)")


def _count_digits(s: str) -> int:
    return sum(map(str.isdigit, s))


def _phone_spans(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for pattern, lo, hi in ((_PHONE_INTL, 8, 15), (_PHONE_DOMESTIC, 8, 11)):
        pos = 0
        while m := pattern.search(text, pos):
            cand = m.group().replace("(0)", "")
            s, e = m.start(), m.end()
            # A trailing number ("040 1234567 12 kertaa", or a second phone) is not part of
            # this phone: cut groups off the end and search again after the cut.
            while _count_digits(cand) > hi:
                cut = _GROUP_SPLIT.search(text, s, e)
                if not cut:
                    break
                e = cut.start()
                cand = text[s:e].replace("(0)", "")
            n = _count_digits(cand)
            if lo <= n <= hi and not _NOT_PRICE_AFTER.match(text, e):
                out.append((s, e))
                pos = e
            else:
                pos = s + 1
    return out


# --- ADDRESS ----------------------------------------------------------------------

_STREET_SUFFIX = (
    r"(?:katu|kadu(?:lla|lle|lta|n)|tie|tie(?:llä|lle|ltä|n)|kuja(?:lla|lle|lta|n)?|"
    r"polku|polu(?:lla|lle|lta|n)|väylä(?:llä|lle|ltä|n)?|ranta|ranna(?:lla|lle|lta|n)|"
    r"puisto(?:ssa|on|sta|n)?|kaari|kaare(?:lla|lle|lta|n)|kaarre|kaartee(?:lla|n)|rinne|"
    r"rintee(?:llä|lle|ltä|n)|tori(?:lla|lle|lta|n)?|aukio(?:lla|lle|lta|n)?|raitti|raiti(?:lla|n)|"
    r"bulevardi(?:lla|lle|lta|n)?|valtatie|kaarto|tanhua|piha|"
    r"gatan|gata|vägen|väg|gränd|stigen|torget|backen|allén|esplanaden|kajen|strand|gången|platsen|"
    r"leden|slingan|stråket|plan)"
)
_QUANTITY_WORDS = (r"kerta|kertaa|kpl|km|m|metriä|min|minuuttia|tuntia|tunnin|h|päivää|viikkoa|"
                   r"kuukautta|vuotta|euroa|e|eur|%|times|hours|minutes|days|weeks|gånger|timmar|minuter|"
                   r"dagar|veckor|år")
_STREET_PREFIX = (r"(?:Itäinen|Läntinen|Pohjoinen|Eteläinen|Vanha|Uusi|Pikku|Iso|Stora|Lilla|Norra|"
                  r"Södra|Östra|Västra|Gamla|Nya)")
# A postcode and a town after the street: Finnish "20100 Turku", Swedish "114 51 Stockholm".
_POSTCODE_CITY = r"(?:\d{5}|\d{3} \d{2})(?: |, ?)(?:S:t )?[A-ZÅÄÖ][A-Za-zåäöÅÄÖ-]+(?: Tl\.?| Hl\.?)?"
_ADDRESS = re.compile(
    rf"(?<![\w-])(?:{_STREET_PREFIX} )?(?:[A-ZÅÄÖ][a-zåäöéü]+(?:-[a-zåäöéü]+)?{_STREET_SUFFIX}"
    # a street named in two words after a genitive: "Aaltosen bulevardi", "Haagan pappilantie"
    rf"|[A-ZÅÄÖ][a-zåäöéü]+(?:-[A-ZÅÄÖa-zåäöéü]+)?n [a-zåäö]*{_STREET_SUFFIX})"
    r" (?!(?:19|20)\d\d\b)\d{1,4}(?:-\d{1,4})?"                   # house number, not a year
    r"(?:(?:\s?[A-H]|[a-h])(?:\s?\d{1,3})?(?!\w|[.,:]\d))?"         # 7a, 12 B, 12 B 5, 12 C7
    r"(?: (?:as\.?|asunto|h\.?|huone|lgh\.?|lägenhet|bst\.?) ?\d{1,4})?"  # 3 as. 4, 12 h 3, lgh 1102
    r"(?::[a-zåäö]{1,4})?"                                        # 12:ssa
    r"(?![\d.,:]\d)(?!\w)"
    rf"(?! (?:{_QUANTITY_WORDS})\b)"                               # "3 kertaa" counts, not a house
    rf"(?:,? {_POSTCODE_CITY}|, ?(?:Turku|Åbo|Salo|Raisio|Reso|Kaarina|S:t Karins|"
    r"Naantali|Nådendal|Parainen|Pargas|Helsinki|Helsingfors|Tampere|Loimaa|Uusikaupunki|Lieto))?"
)
# Post office boxes: "PL 123", "PB 45", "Box 512", "PO Box 42", with an optional postcode and town.
_PO_BOX = re.compile(
    rf"(?<![\w-])(?:PL|Pl\.|PB|P\.?\s?O\.?\s?Box|Box|Postilokero|Postbox)\s?\d{{1,5}}(?!\w)(?:,? {_POSTCODE_CITY})?"
)
# British style: number first ("12 Baker Street", "Flat 3, 12 Smith Road"), or a flat or
# studio then the street. Street types: the USPS suffix list (also used by generated
# British data) and the British ones (Close, Rise, Mews ...).
_EN_STREET_TYPES = (
    r"Alley|Avenue|Branch|Bridge|Brook|Brooks|Burg|Burgs|Bypass|Camp|Canyon|Cape|Causeway|Center|"
    r"Centers|Circle|Circles|Cliff|Cliffs|Club|Common|Corner|Corners|Course|Court|Courts|Cove|"
    r"Coves|Creek|Crescent|Crest|Crossing|Crossroad|Curve|Dale|Dam|Divide|Drive|Drives|Estate|"
    r"Estates|Expressway|Extension|Extensions|Fall|Falls|Ferry|Field|Fields|Flat|Flats|Ford|"
    r"Fords|Forest|Forge|Forges|Fork|Forks|Fort|Freeway|Garden|Gardens|Gateway|Glen|Glens|Green|"
    r"Greens|Grove|Groves|Harbor|Harbors|Harbour|Haven|Heights|Highway|Hill|Hills|Hollow|Inlet|"
    r"Island|Islands|Isle|Junction|Junctions|Key|Keys|Knoll|Knolls|Lake|Lakes|Land|Landing|Lane|"
    r"Lanes|Light|Lights|Loaf|Lock|Locks|Lodge|Loop|Mall|Manor|Manors|Meadow|Meadows|Mews|Mill|"
    r"Mills|Mission|Motorway|Mount|Mountain|Mountains|Neck|Orchard|Oval|Overpass|Park|Parks|"
    r"Parkway|Parkways|Pass|Passage|Path|Pike|Pine|Pines|Place|Plain|Plains|Plaza|Point|Points|"
    r"Port|Ports|Prairie|Radial|Ramp|Ranch|Rapid|Rapids|Rest|Ridge|Ridges|River|Road|Roads|Route|"
    r"Row|Rue|Run|Shoal|Shoals|Shore|Shores|Skyway|Spring|Springs|Spur|Spurs|Square|Squares|"
    r"Station|Stravenue|Stream|Street|Streets|Summit|Terrace|Throughway|Trace|Track|Trafficway|"
    r"Trail|Trails|Tunnel|Turnpike|Underpass|Union|Unions|Valley|Valleys|Via|Viaduct|View|Views|"
    r"Village|Villages|Ville|Vista|Walk|Walks|Wall|Way|Ways|Well|Wells|St|Rd|Ave|Close|Rise|Vale|"
    r"Parade|Circus|Wharf|Quay"
)
_EN_WORD = r"(?:[A-Z](?:[a-z]{0,2}['’]?[A-Z])?[a-z]+)"
_EN_ADDRESS = re.compile(
    rf"(?<![\w-])(?:(?:Flat|Studio|Apartment|Apt\.?|Unit) \d{{1,4}}[A-Za-z]?,?\s+)?"
    rf"(?:\d{{1,4}}[A-Za-z]?,? )?(?:{_EN_WORD} ){{1,2}}(?:{_EN_STREET_TYPES})(?!\w)"
    r"(?:,? [A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}(?!\w)(?: [A-Z][a-z]+(?: [A-Z][a-z]+)?)?)?"  # UK postcode, town
)
# Compounds that end like a street but are ordinary words ("Hoitopolku 2" is a care path).
_NOT_STREETS = frozenset({"Hoitopolku", "Palvelupolku", "Asiakaspolku", "Hoitopolun", "Elämänpolku",
                          "Kuntoutuspolku", "Opintopolku"})
_WORD_BEFORE = re.compile(r"([A-ZÅÄÖ][a-zåäöé]+) $")
_TWO_WORD_STREET = re.compile(r"[A-ZÅÄÖ][\w-]*n [a-zåäö]")
# Words that often start a sentence right before a street ("Asun Aaltosen polku 3").
_VERBS_BEFORE_STREET = frozenset({"asun", "asuin", "olen", "muutin", "bor", "osoite", "osoitteeni", "adress"})


def _address_spans(text: str) -> list[tuple[int, int]]:
    out = []
    for m in _ADDRESS.finditer(text):
        street = m.group().split(" ", 1)[0]
        if street in _NOT_STREETS:
            continue
        start = m.start()
        # "Adolf Lindforsintie 7": a first name before a street named after a person (genitive).
        before = _WORD_BEFORE.search(text, max(0, start - 30), start)
        word = before.group(1) if before else ""
        if word and re.fullmatch(r"[A-ZÅÄÖ][\w-]*n(?:tie|katu|kuja|polku|bulevardi|gatan|vägen)?", street) and \
                (_is_first_name(word, _lexicon(), lone=False) or
                 ((not word.endswith("n") or _TWO_WORD_STREET.match(m.group())) and word.lower() not in _VERBS_BEFORE_STREET
                  and word not in _NOT_NAMES and word.lower() not in _COMMON_WORDS)):
            start = before.start(1)
        out.append((start, m.end()))
    for pattern in (_PO_BOX, _EN_ADDRESS):
        for m in pattern.finditer(text):
            # English streets need a number or a flat before them: "Baker Street" alone is a place.
            if pattern is _EN_ADDRESS and not m.group()[0].isdigit() and not m.group().startswith(
                    ("Flat", "Studio", "Apartment", "Apt", "Unit")):
                continue
            out.append(m.span())
    return out


# --- NAME -------------------------------------------------------------------------

_CAP = "A-ZÅÄÖÜÉ"
_LOW = "a-zåäöüéèáíóúßøæ"
# A capitalised word, optionally hyphenated (Anna-Maija) and with a case ending after a
# colon (Smith:lle) or an English possessive.
# O'Brien, McDonald: an apostrophe or a second capital early in the word.
_CAP_PART = rf"[{_CAP}](?:[{_LOW}]{{0,2}}['’]?[{_CAP}])?[{_LOW}]+"
_CAP_WORD = re.compile(rf"(?<![\w@.-]){_CAP_PART}(?:-{_CAP_PART})*(?::[{_LOW}]{{1,5}}|['’]s)?(?![\w@-])")
# Any word in any case, for names after a title or a self-introduction.
_ANY_WORD = re.compile(rf"[{_CAP}{_LOW}](?:[{_CAP}{_LOW}]|['’-](?=[{_CAP}{_LOW}]))*(?::[{_LOW}]{{1,5}})?")
# Surname shapes typical of Finnish and Swedish surnames, for a word after an unknown first
# name or a lower-case word after a title.
_SURNAME_SHAPE = re.compile(
    r"(?:[a-zåäö]{2}(?:nen|sen|selle|sella|sellä|selta|seltä|sen)|sson|[a-zåäö]son|berg|ström|qvist|kvist|"
    r"lund|gren|holm|dahl|blom|stedt|roos)$"
)
# Ordinary Finnish words of the same shape ("lääkäri nainen" is a woman doctor).
_SHAPE_WORDS = frozenset("""
nainen ihminen toinen ensimmäinen jokainen sellainen tällainen millainen tuollainen kaltainen
ystävällinen inhimillinen asiallinen huolellinen mukava pieni iloinen sosiaalinen lapsen naisen
ihmisen toisen jokaisen ensimmäisen
""".split())

# Roles and titles after which a capitalised word is a person. Compounds are allowed
# before the Finnish and Swedish stems (sairaanhoitaja, överläkare).
_TITLE_STEMS = (
    r"lääkäri|hoitaja|kätilö|terapeut(?:ti|i)|psykologi|hygienisti|työntekijä|ohjaaja|virkailija|"
    r"sosionomi|tohtori|professori|kuraattori|farmaseut(?:ti|i)|proviisori|palomie(?:s|he)|"
    r"ensihoitaja|esihenkilö|päällikkö|päälliko|johtaja|"
    r"sjuksköterska|skötare|vårdare|läkare|doktor|barnmorska|terapeut|psykolog|socialarbetare|"
    r"kurator|handledare|hälsovårdare"
)
# The whole word before a name; checked only in front of capitalised words, which keeps
# the compound prefix from being tried at every position of the text.
_TITLE_WORD = re.compile(
    rf"(?i:(?:[a-zåäö]+-?)?(?:{_TITLE_STEMS})(?:n|t|lle|lta|ltä|lla|llä|a|ä|sta|stä|"
    r"en|na|ille|ien|ilta|iltä|lta)?|doctor|nurse|midwife|physician|therapist|psychologist|surgeon|"
    r"paramedic|worker|rouva|herra|neiti|syster|herr|fru|fröken|(?:dr|tri|mr|mrs|ms|prof)\.?)"
)
_OPENING_PUNCT = "([{\"'«»“”„‚‘’-–—"
# Self-introductions and "c/o": whatever follows is a name, in any case.
_INTRODUCTION = re.compile(
    r"(?<!\w)(?i:(?:minun |mun )?nimeni on|mun nimi on|nimi(?:ni)?:|jag heter|mitt namn är|namn:|"
    r"my name is|name:|c/o)[ ]+"
)
# Greetings, sign-offs and "I am": a capitalised word after them is a name.
_GREETING = re.compile(
    r"(?<!\w)(?i:olen|minä olen|mä oon|jag är|i am|i'm|this is|terveisin|ystävällisin terveisin|t\.|"
    r"hälsningar|mvh|med vänlig hälsning|regards|kind regards|best regards|sincerely|kiitos|tack|thanks|"
    r"thank you|thanks to|tack till|tack vare|hei|hej|hi|dear|"
    # relatives: "äitini Koivisto", "min mamma Berg", "my mother Jones"
    r"(?:äiti|isä|vaimo|mie|poika|tytär|tyttäre|lapse|sisko|velje|mummo|pappa|isoäiti|isoisä|puoliso)ni|"
    r"min (?:mamma|pappa|mor|far|man|fru|son|dotter|make|maka)|my (?:mother|father|wife|husband|son|"
    r"daughter|mum|mom|dad))[,:]?[ ]+(?=[" + _CAP + "])"
)

# Capitalised words that are not people: places, units, organisations, days, months and
# sentence words. Finnish place names are listed with their common case forms.
_NOT_NAMES = frozenset("""
Turku Turun Turussa Turusta Turkuun Turkua Salo Salon Salossa Salosta Saloon Saloa Raisio Raision
Raisiossa Raisiosta Raisioon Kaarina Kaarinan Kaarinassa Kaarinasta Kaarinaan Naantali Naantalin
Naantalissa Naantalista Parainen Paraisten Paraisilla Paraisille Paraisilta Paraisissa Lieto Liedon
Liedossa Loimaa Loimaan Loimaalla Uusikaupunki Uudenkaupungin Uudessakaupungissa Masku Maskun Mynämäki
Mynämäen Laitila Laitilan Somero Someron Paimio Paimion Paimiossa Sauvo Sauvon Kemiönsaari Kemiönsaaren
Pöytyä Pöytyän Aura Auran Marttila Marttilan Rusko Ruskon Nousiainen Nousiaisten Kustavi Taivassalo
Piikkiö Piikkiön Littoinen Littoisten Kupittaa Kupittaan Runosmäki Varissuo Varissuon Hirvensalo
Hirvensalon Ruissalo Ruissalon Helsinki Helsingin Helsingissä Helsingistä Tampere Tampereen Tampereella
Espoo Espoon Vantaa Vantaan Oulu Oulun Suomi Suomen Suomessa Suomesta Suomeen Ruotsi Ruotsin Ruotsissa
Finland Finlands Sverige Sweden Åbo Pargas Reso Nådendal Helsingfors Kimito Nagu Korpo Houtskär Iniö
Tyks Tyksin Tyksissä Tyksistä Tyksiin Tyksille Kela Kelan Kelaan Kelassa Kelasta Kelalle Kelalta
Kelalla Omakanta Omakannan Omakannassa Omakantaan Kanta Kannan Varha Varhan Varhalla Varhalle Varhassa
Hus Fimlab Fimlabin Terveystalo Terveystalon Mehiläinen Mehiläisen Mehiläisessä Pihlajalinna Attendo
Esperi Posti Postin Föli Fölin Valvira Thl Kanta-palvelut Tyks-Salo Kiitos Kiitokset Terveisin Hei
Moi Tack Hej Thanks Thank Regards Ja Tai Mutta Se Hän He Me Te Minä Sinä Ei Kyllä Että Kun Jos
The And But Or I We You He She They It This That Monday Tuesday Wednesday Thursday Friday Saturday
Sunday January February March April May June July August September October November December
Maanantai Maanantaina Tiistai Tiistaina Keskiviikko Keskiviikkona Torstai Torstaina Perjantai
Perjantaina Lauantai Lauantaina Sunnuntai Sunnuntaina Tammikuu Helmikuu Maaliskuu Huhtikuu Toukokuu
Kesäkuu Heinäkuu Elokuu Syyskuu Lokakuu Marraskuu Joulukuu Och Men Jag Det Den Vi Ni Hon Han
Doctor Nurse Hoitaja Lääkäri Sairaanhoitaja Terveysasema Päivystys Yhteispäivystys Läkaren
Jour Akuten English Finnish Swedish Englanti Suomi Ruotsi Svenska Finska Engelska
""".split())

# "Runosmäen terveysasema": a capitalised word before a unit word is a place, not a person.
_PLACE_AFTER = re.compile(
    r"\s+(?:terveysasem|terveyskesk|päivystyk|päivystys|yhteispäivystyk|sairaal|hammashoitol|neuvol|"
    r"kotihoid|kotihoito|sosiaalitoimist|apteek|palvelukesk|hälsostation|jour|sjukhus|tandklinik|"
    r"health cent|hospital|emergency|dental)"
)

# Unit and service words inside a capitalised word ("Kotihoidon", "Perhepalvelujen",
# "Keskustan"): never a surname.
_UNIT_WORD = re.compile(
    r"(?:hoi[dt]o|palvelu|asema|päivysty|sairaal|keskus|keskuks|neuvol|hoitol|osasto|klinik|toimisto|"
    r"laitos|työ|vård|mottagning|sjukhus|station|tjänst)[a-zåäö]*$"
)
# Frequent words that erratic capitalisation puts after a title ("Lääkäri Kysyi") or that
# follow a self-introduction ("olen pettynyt").
_COMMON_WORDS = frozenset("""
oli on ei ja sanoi kysyi mukaan kanssa myös vain että kun joka jo tosi todella aina ihan aivan hyvin
mukava kiva ystävällinen olivat var är och som inte hade sa was is are and the who said asked
practitioner very really always tai mutta se hän he me minä sinä kyllä jos nyt vielä sitten siellä
täällä tuli meni teki katsoi kertoi soitti auttoi hoiti antoi otti osasi ehti ymmärsi kuunteli
not so also just a an of to in at on for with from by my our your his her their this that
eller men jag det den de vi ni han hon har hade kom gav sade frågade hjälpte inte också bara mycket
""".split())


@dataclass(frozen=True)
class _NameLexicon:
    any_form: frozenset[str]       # every listed form of every name
    lone_ok: frozenset[str]        # forms that are a name even without a surname


@lru_cache(maxsize=1)
def _lexicon() -> _NameLexicon:
    raw = json.loads(resources.files("pipelines").joinpath("data/first_names.json").read_text("utf-8"))
    common = set(raw["common_word_forms"])
    any_form: set[str] = set()
    lone: set[str] = set()
    for entry in raw["names"]:
        forms = {entry["name"], *entry["forms"].values()}
        any_form |= forms
        if not entry["ambiguous"]:
            lone |= forms - common
    return _NameLexicon(frozenset(any_form), frozenset(lone - _NOT_NAMES))


def _bare(word: str) -> str:
    """The word without a colon case ending or possessive: Smith:lle -> Smith, O'Brien's -> O'Brien."""
    if ":" in word:
        return word.split(":", 1)[0]
    if word.endswith(("'s", "’s")):
        return word[:-2]
    return word


def _is_first_name(word: str, lex: _NameLexicon, lone: bool) -> bool:
    forms = lex.lone_ok if lone else lex.any_form
    w = _bare(word)
    if w in forms:
        return True
    # Anna-Maija, Marja-Liisalle: every part a first name, the last part in any case.
    parts = w.split("-")
    return len(parts) > 1 and all(p in lex.any_form for p in parts)


def _is_surname(word: str) -> bool:
    w = _bare(word)
    if w in _NOT_NAMES or len(w) < 2:
        return False
    low = w.lower()
    return low not in _COMMON_WORDS and not _UNIT_WORD.search(low) and not _TITLE_WORD.fullmatch(w)


def _name_tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in _CAP_WORD.finditer(text)]


def _linked(text: str, a: tuple[int, int, str], b: tuple[int, int, str]) -> bool:
    return b[0] - a[1] == 1 and text[a[1]] == " "


def _name_spans(text: str) -> list[tuple[int, int]]:
    lex = _lexicon()
    out = _triggered_name_spans(text, lex)
    tokens = _name_tokens(text)
    if not tokens:
        return out

    # 1. Title or role, then one to three capitalised words.
    for i, (start, _, word) in enumerate(tokens):
        if not _title_before(text, start):
            continue
        # "Nurse Kaarina": after a title a first name wins over the place of the same name.
        if not (_is_surname(word) or _is_first_name(word, lex, lone=False)):
            continue
        j = _extend(text, tokens, i)
        if j is not None:
            out.append((start, tokens[j][1]))

    # 2. First name + surname(s); 3. a first name alone when it is not also a word;
    # 4. any capitalised word + a surname of a typical shape (Ann-Sofie Larsson).
    i = 0
    while i < len(tokens):
        word = tokens[i][2]
        if i + 1 < len(tokens) and not _is_first_name(word, lex, lone=False) and _is_surname(word) \
                and _linked(text, tokens[i], tokens[i + 1]) and _has_surname_shape(tokens[i + 1][2]):
            out.append((tokens[i][0], tokens[i + 1][1]))
            i += 2
            continue
        if _is_first_name(word, lex, lone=False):
            j = _extend(text, tokens, i)
            if j is not None and j > i:
                # A first name that is also a place (Kaarina, Aura) counts only with a surname.
                out.append((tokens[i][0], tokens[j][1]))
                i = j + 1
                continue
            if j == i and word not in _NOT_NAMES and _is_first_name(word, lex, lone=True):
                out.append((tokens[i][0], tokens[i][1]))
        i += 1
    return out


def _has_surname_shape(word: str) -> bool:
    w = _bare(word)
    return _is_surname(w) and bool(_SURNAME_SHAPE.search(w.lower().split("-")[-1]))


# Cheap hints for the title search in lower or upper case: the full title check runs only
# on the words that contain one.
_TITLE_HINT = re.compile(
    r"(?i:lääkär|hoitaj|kätil|terapeut|psykolog|hygienist|työntekij|ohjaaj|virkailij|sosionom|tohtor|"
    r"professor|kuraattor|farmaseut|proviisor|palomie|päällik|johtaj|esihenkil|sjuksköt|skötare|vårdare|"
    r"läkare|doktor|barnmorsk|kurator|handledare|hälsovård|doctor|nurse|midwife|physician|therapist|"
    r"surgeon|paramedic|worker|rouva|herra|neiti|syster|herr\b|fru\b|fröken|\bdr\b|\btri\b|\bmrs?\b|"
    r"\bms\b|\bprof\b)"
)


def _case_style(word: str) -> str:
    if word.isupper() and len(word) > 1:
        return "upper"
    return "lower" if word.islower() else "cap"


def _plausible_any_case(word: str, style: str, lex: _NameLexicon) -> bool:
    """A lower- or upper-case word after a title that is a name, not an ordinary word."""
    low = word.lower()
    if low in _COMMON_WORDS or low in _SHAPE_WORDS:
        return False
    cap = "-".join(p.capitalize() for p in _bare(word).split("-"))
    if style == "upper":
        return _is_surname(cap) or _is_first_name(cap, lex, lone=False)
    # Lower case: only a known first name or a typical surname shape, since any verb can follow.
    return (_is_first_name(cap, lex, lone=True) or bool(_SURNAME_SHAPE.search(low))) and _is_surname(cap)


def _words_after(text: str, pos: int, accept: Callable[[str, int, str], bool]) -> tuple[int, int] | None:
    """The span of up to three space-separated words from ``pos`` that ``accept`` takes."""
    first: int | None = None
    end = pos
    style = ""
    for k in range(3):
        m = _ANY_WORD.match(text, pos)
        if not m or (k and _case_style(m.group()) != style):
            break
        if not accept(m.group(), k, _case_style(m.group())):
            break
        style = _case_style(m.group())
        first = m.start() if first is None else first
        end = m.end()
        if text[end:end + 1] != " ":
            break
        pos = end + 1
    return (first, end) if first is not None else None


def _triggered_name_spans(text: str, lex: _NameLexicon) -> list[tuple[int, int]]:
    """Names after a self-introduction or greeting, and lower/upper-case names after a title."""
    out: list[tuple[int, int]] = []

    # A name a resident introduces may also be a place or a month (June Clarke, Arttu Salo).
    def strong(word: str, k: int, style: str) -> bool:
        if word.lower() in _COMMON_WORDS or _UNIT_WORD.search(word.lower()) or _TITLE_WORD.fullmatch(word):
            return False
        return style != "lower" or k == 0 or _plausible_any_case(word, style, lex)

    def weak(word: str, k: int, style: str) -> bool:
        if style != "cap":
            return False
        if k and word.lower() not in _COMMON_WORDS and not _UNIT_WORD.search(word.lower()):
            return not _TITLE_WORD.fullmatch(word)
        return _is_surname(word) or _is_first_name(word, lex, lone=False)

    for pattern, accept in ((_INTRODUCTION, strong), (_GREETING, weak)):
        for m in pattern.finditer(text):
            span = _words_after(text, m.end(), accept)
            if span:
                out.append(span)
    last_end = -1
    for h in _TITLE_HINT.finditer(text):
        if h.start() < last_end:
            continue
        b, e = h.start(), h.end()
        while b > 0 and (text[b - 1].isalpha() or text[b - 1] == "-"):
            b -= 1
        while e < len(text) and text[e].isalpha():
            e += 1
        last_end = e
        if not _TITLE_WORD.fullmatch(text[b:e]):
            continue
        pos = e + 1 if text[e:e + 1] == "." else e
        if text[pos:pos + 1] != " ":
            continue

        def after_title(word: str, k: int, style: str) -> bool:
            return style != "cap" and _plausible_any_case(word, style, lex)

        span = _words_after(text, pos + 1, after_title)
        if span:
            out.append(span)
    return out


def _title_before(text: str, start: int) -> bool:
    """True if the word before ``start`` (separated by spaces or tabs) is a title or role."""
    end = start
    while end > 0 and text[end - 1] in " \t":
        end -= 1
    if end == start or end == 0:
        return False
    begin = end
    while begin > 0 and not text[begin - 1].isspace():
        begin -= 1
    return _TITLE_WORD.fullmatch(text[begin:end].lstrip(_OPENING_PUNCT)) is not None


def _extend(text: str, tokens: list[tuple[int, int, str]], i: int) -> int | None:
    """Index of the last token of the name starting at token ``i`` (up to two surnames).

    The last word is dropped when a unit word follows it ("Virtanen Runosmäen
    terveysasemalla"); None when nothing is left.
    """
    j = i
    while j + 1 < len(tokens) and j - i < 2 and _linked(text, tokens[j], tokens[j + 1]) \
            and _is_surname(tokens[j + 1][2]):
        j += 1
    if _PLACE_AFTER.match(text, tokens[j][1]):
        j -= 1
    return j if j >= i else None


# --- normalisation ----------------------------------------------------------------

# Characters that make the slow path necessary even when the text is already NFKC: Unicode
# spaces (Zs) and the common invisible format characters (Cf).
_NEEDS_NORMALISING = re.compile(
    "[\u00a0\u00ad\u061c\u1680\u180e\u2000-\u200f\u202a-\u202f\u205f-\u2064\u2066-\u206f"
    "\u3000\ufeff\ufff9-\ufffb]"
)


@dataclass(frozen=True)
class _View:
    """The normalised text the detectors see, and where each of its characters came from."""

    text: str
    starts: list[int] | None = None  # original start of the character at each view index
    ends: list[int] | None = None    # original end (exclusive) of that character

    def original(self, start: int, end: int) -> tuple[int, int]:
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def _normalise(text: str) -> _View:
    """NFKC, every Unicode space a plain space, invisible format characters removed.

    Residents paste from word processors and phones: a no-break space inside a phone
    number or a soft hyphen inside a HETU must not hide it from the detectors.
    """
    if text.isascii() or (not _NEEDS_NORMALISING.search(text) and unicodedata.is_normalized("NFKC", text)):
        return _View(text)
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(text)
    while i < n:
        # A base character with its combining marks is normalised as one piece.
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        category = unicodedata.category(text[i])
        if category == "Cf":
            i += 1
            continue
        piece = " " if category == "Zs" else unicodedata.normalize("NFKC", text[i:j])
        for ch in piece:
            if unicodedata.category(ch) == "Zs":
                ch = " "
            out.append(ch)
            starts.append(i)
            ends.append(j)
        i = j
    return _View("".join(out), starts, ends)


# --- assembly ---------------------------------------------------------------------

_HAS_DIGIT = re.compile(r"\d")


def _hetu_spans(text: str) -> list[tuple[int, int]]:
    out = [m.span() for m in _HETU_SHAPE.finditer(text) if _hetu_parts_valid(*m.groups())]
    out += [m.span() for m in _HETU_COMPACT.finditer(text) if _compact_hetu_valid(*m.groups())]
    return out


def _id_spans(text: str) -> list[tuple[int, int]]:
    """HETU-shaped strings that fail validation but carry a plausible date."""
    return [m.span() for m in _HETU_SHAPE.finditer(text)
            if _plausible_date(m.group(1), m.group(2)) and not _hetu_parts_valid(*m.groups())]


def _overlaps(start: int, end: int, taken: list[tuple[str, int, int]]) -> bool:
    return any(start < e and s < end for _, s, e in taken)


def _mask(text: str, taken: list[tuple[str, int, int]]) -> str:
    """``text`` with claimed spans blanked out as ``[...]``, the way the output will read.

    Later detectors then see the same neighbours on the first pass as on a second pass
    over the redacted text (idempotence), and a name cannot run into a claimed address.
    """
    parts: list[str] = []
    pos = 0
    for _, s, e in sorted(taken, key=lambda t: t[1]):
        parts.append(text[pos:s])
        parts.append("[" + "\x00" * (e - s - 2) + "]")
        pos = e
    parts.append(text[pos:])
    return "".join(parts)


def _detectors(text: str) -> list[tuple[str, Callable[[str], list[tuple[int, int]]]]]:
    out: list[tuple[str, Callable[[str], list[tuple[int, int]]]]] = []
    if "@" in text or _AT_WORD.search(text):
        out.append(("EMAIL", lambda t: [m.span() for m in _EMAIL.finditer(t)]))
    if _HAS_DIGIT.search(text):
        out += [("IBAN", _iban_spans), ("HETU", _hetu_spans), ("PNR", _pnr_spans), ("ID", _id_spans),
                ("PHONE", _phone_spans), ("ADDRESS", _address_spans)]
    out.append(("NAME", _name_spans))
    return out


def redact(text: str) -> Redaction:
    """Replace personal data in ``text`` with typed placeholders such as ``[HETU]``.

    Idempotent: redacting the output again changes nothing.
    """
    normal = _normalise(text)
    found = _detect(normal.text)
    if not found:
        return Redaction(text, {}, [])
    taken = [(kind, *normal.original(s, e)) for kind, s, e in found]
    taken.sort(key=lambda t: t[1])
    parts: list[str] = []
    pos = 0
    counts: dict[str, int] = {}
    for kind, s, e in taken:
        parts.append(text[pos:s])
        parts.append(f"[{kind}]")
        pos = e
        counts[kind] = counts.get(kind, 0) + 1
    parts.append(text[pos:])
    return Redaction("".join(parts), counts, taken)


def _detect(text: str) -> list[tuple[str, int, int]]:
    """(type, start, end) of every item found in the normalised ``text``."""
    # UUIDs (feedback ids, booking references) are not personal, but their digit groups look
    # like phone numbers: claim them first so no detector sees them, and keep them as written.
    taken: list[tuple[str, int, int]] = [(_KEEP, *m.span()) for m in _UUID.finditer(text)]
    view = _mask(text, taken) if taken else text
    for kind, detect in _detectors(text):
        spans = detect(view)
        if len(spans) > 1:
            # Within a type, longer spans first so "Matti Virtanen" beats "Matti".
            spans = sorted(spans, key=lambda se: (se[0] - se[1], se[0]))
        added = False
        for s, e in spans:
            if not taken or not _overlaps(s, e, taken):
                taken.append((kind, s, e))
                added = True
        if added:
            view = _mask(text, taken)
    return [t for t in taken if t[0] != _KEEP]


_KEEP = "KEEP"
_UUID = re.compile(r"(?<![\w-])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![\w-])", re.IGNORECASE)
