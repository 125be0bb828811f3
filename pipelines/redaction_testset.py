"""A synthetic, labelled test set for ``pipelines.redaction`` and its evaluation.

``generate`` fills Finnish, Swedish and English feedback templates with planted
identifiers of every type (valid HETUs of all century signs, mistyped HETUs, phones in
every supported format, emails, IBANs, addresses, names) and with hard negatives that
look like identifiers but are not (dates, times, prices, postal codes, durations, unit
and organisation names). ``evaluate`` scores ``redact`` on it at span level.

The set is template-made, so it measures whether each supported form is handled and
whether the hard negatives stay; it is not an estimate of recall on real free text.
A few templates hold forms the redactor is known not to catch (a surname alone at the
start of a sentence, a first name typed in lower case) so that NAME recall is not 1.0
by construction.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources
from typing import Callable, Iterable

from pipelines.redaction import HETU_CHECK_CHARS, PLACEHOLDER_TYPES, redact

__all__ = ["PlantedSpan", "PlantedText", "TypeScore", "RedactionReport", "generate", "evaluate",
           "format_report", "generate_hetu", "generate_bad_hetu", "generate_iban", "generate_phone",
           "PHONE_FORMATS"]


@dataclass(frozen=True)
class PlantedSpan:
    """A planted identifier (type is a placeholder type) or hard negative (type is its kind)."""

    type: str
    start: int
    end: int


@dataclass(frozen=True)
class PlantedText:
    """One generated text with its ground truth."""

    text: str
    language: str
    spans: tuple[PlantedSpan, ...]
    negatives: tuple[PlantedSpan, ...] = ()


@dataclass(frozen=True)
class TypeScore:
    """Span-level counts for one placeholder type."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def planted(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class RedactionReport:
    """Per-type scores plus how many hard negatives a redaction span touched."""

    per_type: dict[str, TypeScore]
    texts: int
    hard_negatives: int
    hard_negatives_redacted: int
    # (type, "FN" | "FP", snippet) for the first few errors, to see what went wrong.
    errors: list[tuple[str, str, str]] = field(default_factory=list)


# --- identifier generators ---------------------------------------------------------

_SIGN_YEARS: dict[str, tuple[int, int]] = {"+": (1850, 1899), "-": (1900, 1999), "U": (1900, 1999),
                                           "V": (1900, 1999), "W": (1900, 1999), "X": (1900, 1999),
                                           "Y": (1900, 1999), "A": (2000, 2025), "B": (2000, 2025),
                                           "C": (2000, 2025), "D": (2000, 2025), "E": (2000, 2025),
                                           "F": (2000, 2025)}
HETU_SIGNS: tuple[str, ...] = tuple(_SIGN_YEARS)


def generate_hetu(rng: random.Random, sign: str | None = None, temporary: bool | None = None) -> str:
    """A valid HETU: random date in the sign's century, individual number 002-899 (900-999 if temporary)."""
    sign = sign if sign is not None else rng.choice(HETU_SIGNS)
    lo, hi = _SIGN_YEARS[sign]
    born = date(lo, 1, 1) + timedelta(days=rng.randrange((date(hi, 12, 31) - date(lo, 1, 1)).days + 1))
    temporary = rng.random() < 0.1 if temporary is None else temporary
    nnn = rng.randint(900, 999) if temporary else rng.randint(2, 899)
    head = f"{born:%d%m}{born.year % 100:02d}"
    return f"{head}{sign}{nnn:03d}{HETU_CHECK_CHARS[int(f'{head}{nnn:03d}') % 31]}"


def generate_bad_hetu(rng: random.Random) -> str:
    """A HETU with a wrong check character: what a resident who mistyped one character writes."""
    good = generate_hetu(rng)
    wrong = rng.choice([c for c in HETU_CHECK_CHARS if c != good[-1]])
    return good[:-1] + wrong


_IBAN_BBAN: dict[str, str] = {"FI": "n14", "SE": "n20", "DE": "n18", "EE": "n16", "NO": "n11", "DK": "n14",
                              "GB": "a4n14", "FR": "n23", "NL": "a4n10", "ES": "n20"}


def generate_iban(rng: random.Random, country: str = "FI", spaced: bool = True) -> str:
    """A random IBAN with correct mod-97 check digits, printed in groups of four or compact."""
    bban = ""
    for kind, n in re.findall(r"([an])(\d+)", _IBAN_BBAN[country]):
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if kind == "a" else "0123456789"
        bban += "".join(rng.choice(alphabet) for _ in range(int(n)))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    iban = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if spaced else iban


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(n))


_MOBILE = ("040", "041", "044", "045", "046", "050")
PHONE_FORMATS: tuple[str, ...] = (
    "040 123 4567", "0401234567", "040-1234567", "050 123 45 67", "(09) 123 4567", "09-1234567",
    "+358 40 123 4567", "+358401234567", "00358 40 1234567", "+358 (0)40 123 4567",
    "+46 70 123 45 67", "+44 20 7946 0958",
)


def generate_phone(rng: random.Random, fmt: str | None = None) -> str:
    """A random number written in one of ``PHONE_FORMATS`` (the format's digits are replaced)."""
    fmt = fmt or rng.choice(PHONE_FORMATS)
    mob = rng.choice(_MOBILE)
    area = rng.choice(("02", "03", "09", "06", "08"))
    d = lambda n: _digits(rng, n)  # noqa: E731
    return {
        "040 123 4567": f"{mob} {d(3)} {d(4)}",
        "0401234567": f"{mob}{d(7)}",
        "040-1234567": f"{mob}-{d(7)}",
        "050 123 45 67": f"{mob} {d(3)} {d(2)} {d(2)}",
        "(09) 123 4567": f"({area}) {d(3)} {d(4)}",
        "09-1234567": f"{area}-{d(7)}",
        "+358 40 123 4567": f"+358 {mob[1:]} {d(3)} {d(4)}",
        "+358401234567": f"+358{mob[1:]}{d(7)}",
        "00358 40 1234567": f"00358 {mob[1:]} {d(7)}",
        "+358 (0)40 123 4567": f"+358 (0){mob[1:]} {d(3)} {d(4)}",
        "+46 70 123 45 67": f"+46 7{rng.choice('0236')} {d(3)} {d(2)} {d(2)}",
        "+44 20 7946 0958": f"+44 20 {d(4)} {d(4)}",
    }[fmt]


# --- names -------------------------------------------------------------------------

_FI_SURNAMES = ("Virtanen Korhonen Mäkinen Nieminen Mäkelä Hämäläinen Heikkinen Koskinen Järvinen Lehtonen "
                "Lehtinen Saarinen Salminen Heinonen Niemelä Heikkilä Kinnunen Salonen Turunen Tuominen "
                "Rantanen Karjalainen Jokinen Mattila Savolainen Lahtinen Ahonen Kallio Leinonen Hiltunen "
                "Miettinen Leppänen Räsänen Hakala Ojala Väisänen Peltonen Koivisto Laaksonen Anttila "
                "Manninen Suominen Aaltonen Grönlund").split()
_SV_SURNAMES = ("Lindholm Lindqvist Nyman Holmström Lindroos Sundqvist Grönroos Björklund Eriksson Johansson "
                "Andersson Karlsson Nyström Forsman Wikström Sjöberg Åberg Östman Fagerström Lindberg").split()
_EN_SURNAMES = ("Smith Johnson Brown Williams Taylor Jones Wilson Clarke Evans Walker Petrov Ivanova "
                "Novak Garcia Müller Hassan").split()


def _front(word: str) -> bool:
    return not any(c in "aou" for c in word.lower())


def _surname_forms(name: str) -> dict[str, str]:
    a = "ä" if _front(name) else "a"
    if name.endswith("nen"):
        stem = name[:-3] + "se"
    elif name[-1] in "aeiouyäö":
        stem = name
    else:
        stem = name + "i"
    return {"nom": name, "gen": stem + "n", "all": stem + "lle", "ade": stem + "ll" + a}


@dataclass(frozen=True)
class _FirstName:
    name: str
    lang: str
    ambiguous: bool
    forms: dict[str, str]

    def form(self, case: str) -> str:
        return self.name if case == "nom" else self.forms[case]


@lru_cache(maxsize=1)
def _first_names() -> tuple[_FirstName, ...]:
    raw = json.loads(resources.files("pipelines").joinpath("data/first_names.json").read_text("utf-8"))
    common = set(raw["common_word_forms"])
    out = []
    for e in raw["names"]:
        if any(f in common for f in (e["name"], *e["forms"].values())):
            continue  # the generator plants unambiguous forms only; the lexicon handles the rest
        out.append(_FirstName(e["name"], e["lang"], e["ambiguous"], e["forms"]))
    return tuple(out)


def _pick_first(rng: random.Random, langs: tuple[str, ...], lone: bool) -> _FirstName:
    pool = [n for n in _first_names() if n.lang in langs and not (lone and n.ambiguous)]
    return rng.choice(pool)


_ASCII = str.maketrans({"ä": "a", "ö": "o", "å": "a", "ü": "u", "é": "e"})


def _email(rng: random.Random) -> str:
    first = _pick_first(rng, ("fi", "sv", "intl"), lone=False).name.lower().translate(_ASCII)
    last = rng.choice(_FI_SURNAMES + _SV_SURNAMES).lower().translate(_ASCII)
    domain = rng.choice(("example.fi", "example.com", "gmail.com", "outlook.com", "luukku.com",
                         "example.se", "kolumbus.fi", "hotmail.fi"))
    local = rng.choice((f"{first}.{last}", f"{first}{rng.randint(1, 99)}", f"{first}_{last[0]}",
                        f"{first}.{last}+palaute", f"{last}.{first[0]}"))
    return f"{local}@{domain}"


# --- addresses -----------------------------------------------------------------------

_FI_STREETS = ("Aurakatu Hämeenkatu Mannerheimintie Yliopistonkatu Linnankatu Humalistonkatu Kauppiaskatu "
               "Eerikinkatu Puolalankatu Ratapihankatu Uudenmaankatu Koivupolku Rantaväylä Kirkkoranta "
               "Koulukaari Kalliorinne Piispankatu Sepänkatu Satakunnantie Ruissalontie Kupittaankuja "
               "Vähäheikkiläntie Lemminkäisenkatu Tampereentie Karjakuja Sairashuoneenkatu Kärsämäentie "
               "Paimiontie Rauhankatu Kasarmikatu Vesilinnanpuisto Kuninkojantie Vanhalinnantie").split()
_FI_STREETS += ["Itäinen Pitkäkatu", "Läntinen Rantakatu", "Vanha Tampereentie", "Pohjoinen Rantakatu"]
_SV_STREETS = ("Slottsgatan Skolgatan Strandvägen Kyrkogatan Tavastgatan Auragatan Klostergränd "
               "Biskopsgatan Sjövägen Humlegårdsgatan Nylandsgatan").split() + ["Stora Tvärgatan"]
_CITIES = (("20100", "Turku"), ("20500", "Turku"), ("20810", "Turku"), ("24100", "Salo"), ("21200", "Raisio"),
           ("21600", "Parainen"), ("20780", "Kaarina"), ("21100", "Naantali"), ("00100", "Helsinki"))
_SV_CITIES = (("20100", "Åbo"), ("21600", "Pargas"), ("21200", "Reso"), ("20780", "S:t Karins"))


def _house(rng: random.Random) -> str:
    n = rng.randint(1, 120)
    return rng.choice((f"{n}", f"{n} {rng.choice('ABCDE')} {rng.randint(1, 60)}",
                       f"{n} as. {rng.randint(1, 40)}", f"{n}{rng.choice('abc')}", f"{n} {rng.choice('ABC')}",
                       f"{n} {rng.choice('ABC')}{rng.randint(1, 40)}"))


def _address(rng: random.Random, swedish: bool = False) -> str:
    street = rng.choice(_SV_STREETS if swedish else _FI_STREETS)
    out = f"{street} {_house(rng)}"
    r = rng.random()
    if r < 0.4:
        postal, city = rng.choice(_SV_CITIES if swedish else _CITIES)
        out += rng.choice((f", {postal} {city}", f" {postal} {city}"))
    elif r < 0.5:
        out += ", " + rng.choice(("Åbo", "Pargas") if swedish else ("Turku", "Salo", "Raisio"))
    return out


# --- hard negatives ------------------------------------------------------------------

def _date(rng: random.Random) -> str:
    d, m = rng.randint(1, 28), rng.randint(1, 12)
    return rng.choice((f"{d}.{m}.2026", f"{d:02d}.{m:02d}.2026", f"{d}.{m}.", f"{d:02d}.{m:02d}.2025",
                       f"2026-{m:02d}-{d:02d}"))


def _time(rng: random.Random) -> str:
    h, mi = rng.randint(0, 23), rng.choice((0, 15, 30, 45, 5))
    return rng.choice((f"{h}.{mi:02d}", f"{h:02d}:{mi:02d}", f"{h:02d}.{mi:02d}", f"{h}"))


def _timerange(rng: random.Random) -> str:
    a, b = rng.randint(6, 12), rng.randint(14, 22)
    return rng.choice((f"{a}-{b}", f"{a}–{b}", f"{a:02d}.00-{b:02d}.00", f"{a}.00–{b}.30",
                       f"{a:02d}-{b:02d}"))


def _price(rng: random.Random) -> str:
    r = rng.randint
    return rng.choice((f"{r(1, 9)} {r(100, 999)} €", f"{r(10, 300)},{r(10, 99)} €", f"{r(5, 500)} euroa",
                       f"{r(20, 90)} e", f"0{r(10, 99)} 500 €"))


def _duration(rng: random.Random, lang: str) -> str:
    n = rng.randint(2, 12)
    return {"fi": rng.choice((f"{n} tuntia", f"{n * 5} minuuttia", f"{n} viikkoa", f"{n} päivää", f"{n} h")),
            "sv": rng.choice((f"{n} timmar", f"{n * 5} minuter", f"{n} veckor")),
            "en": rng.choice((f"{n} hours", f"{n * 5} minutes", f"{n} weeks"))}[lang]


_UNITS_INE = ("Turun yhteispäivystyksessä", "Salon päivystyksessä", "Raision terveysasemalla", "Tyksissä",
              "Paraisten terveysasemalla", "Turun hammashoitolassa", "Kupittaan terveysasemalla",
              "Salon terveyskeskuksessa", "Runosmäen terveysasemalla", "Kaarinan terveysasemalla")
_UNITS_GEN = ("Turun yhteispäivystyksen", "Salon päivystyksen", "Raision terveysaseman", "Tyksin",
              "Kotihoidon", "Perhepalvelujen", "Kaarinan terveysaseman", "Aikuissosiaalityön")
_UNITS_SV = ("Åbo samjour", "Salo jour", "Reso hälsostation", "Pargas hälsostation", "Åbo tandklinik")
_UNITS_EN = ("Turku emergency department", "Salo emergency clinic", "Raisio health centre",
             "Turku dental clinic", "Tyks", "Kela")
_ORGS = ("Kela", "Omakanta", "Tyks", "Kanta", "Suomi.fi", "Varha", "Fimlab")


# --- templates -----------------------------------------------------------------------

_FI_TEMPLATES = (
    "Soitin {DATE} klo {TIME} numeroon {PHONE}, mutta kukaan ei vastannut {DURATION}.",
    "Henkilötunnukseni on {HETU}, ajanvaraus oli {DATE} klo {TIME}.",
    "Hetu {HETU} – pyydän korjaamaan tiedot, Omakannassa näkyy väärä käynti.",
    "Laskun voi palauttaa tilille {IBAN}, maksoin {PRICE} liikaa.",
    "Asun osoitteessa {ADDRESS} ja kotihoito kävi vain {COUNT} viikossa.",
    "Kiitos {FIRST_ALL}, hoito {UNIT_INE} oli erinomaista!",
    "Lääkäri {TSUR} {UNIT_INE} oli todella asiantunteva.",
    "Sairaanhoitaja {TFULL} auttoi minua klo {TIME} jälkeen.",
    "Ottakaa yhteyttä sähköpostilla {EMAIL} tai puhelimitse {PHONE}.",
    "{FULL} ({HETU}) odotti {DURATION} {UNIT_INE}.",
    "Henkilötunnus {BADHETU}, en ole varma viimeisestä merkistä.",
    "{FIRST} oli ihana, kiitos hänelle! Vastaanotto oli auki {TIMERANGE}.",
    "Erityiskiitos {FIRST_ALL} ja {FIRST_ALL} {UNIT_GEN} osastolla.",
    "Postinumero {POSTAL} on väärin rekisterissä, oikea osoite on {ADDRESS}.",
    "Vastaanotto oli auki {TIMERANGE}, mutta jonotin {DURATION} ja jonotusnumero oli {COUNT}.",
    "Verenpaine oli {BP} ja lääkäri {TSUR} ei reagoinut siihen mitenkään.",
    "{ORG} ei korvannut käyntiä, maksoin {PRICE} {DATE}.",
    "{UNIT_INE} hoitaja {TFIRST} oli todella ystävällinen.",
    "{WORD:Toivon}, että joku {UNIT_GEN} väestä soittaa minulle numeroon {PHONE}.",
    "{WORD:Anna} meille mahdollisuus vaikuttaa! Numeroni on {PHONE}.",
    "{WORD:Ainoa} ongelma oli {DURATION} odotus ja {PRICE} maksu.",
    "{WORD:Aina} kun soitan numeroon {PHONE}, linja on varattu {DURATION}.",
    "Kiitos {FULL_ALL} ja koko {UNIT_GEN} henkilökunnalle!",
    "Tyttäreni {FIRST} ({HETU}) sai ajan vasta {DATE}.",
    "Isäni syntyi vuonna {YEAR} ja hänen henkilötunnuksensa on {HETU}.",
    "Yhteystietoni: {FULL}, {ADDRESS}, puh. {PHONE}, {EMAIL}.",
    "Lasku lähti väärään osoitteeseen ({ADDRESS}) ja eräpäivä oli {DATE}.",
    "Hammaslääkäri {TSUR_ALL} iso kiitos, hoito maksoi vain {PRICE}.",
    "Keskustelin sosiaalityöntekijä {TFULL_GEN} kanssa {DATE} klo {TIME}.",
    "Potilastietoni löytyvät hetulla {HETU}. Odotin {DURATION}.",
    "Palautus tilille {IBAN} ({FULL}), kiitos.",
    "Kotihoitaja {TFIRST} tulee aina hymyillen, vaikka käyntejä on {COUNT} päivässä.",
    "Minut tavoittaa numerosta {PHONE} arkisin {TIMERANGE}.",
    "Lähetin viestin osoitteeseen {EMAIL} jo {DATE}, mutta vastausta ei ole kuulunut.",
    "Omaisena pyydän, että äitini {FULL} ({HETU}) saisi iltakäynnin aikaisemmin, nyt hoitaja tulee vasta klo {TIME}.",
    "{ORG:Kelan} päätös tuli {DATE}, ja maksoin {PRICE}. Tilinumeroni on {IBAN}.",
    "Hoitaja kertoi, että {FIRST_ELA} voi kysyä lisää. Puhelin {PHONE}.",
    "Odotin {UNIT_INE} {DURATION} {DATE}, eikä kukaan kertonut syytä.",
    "Lääkäri {TSUR} ja hoitaja {TFIRST} olivat molemmat todella mukavia.",
    "Muutin osoitteeseen {ADDRESS}, mutta kirje meni vanhaan osoitteeseen postinumeroon {POSTAL}.",
    "Tunnukseni on {BADHETU} tai jotain sinne päin, tarkistakaa {ORG}-tiedot.",
    "Ensihoitaja {TFULL} tuli paikalle {DURATION} soiton jälkeen.",
    "{FIRST} {UNIT_GEN} neuvonnasta osasi auttaa, kiitos!",
    "Kuntoutus alkoi {DATE}, käyntejä oli {COUNT} ja jokainen kesti {DURATION}.",
    "Lapseni hetu on {HETU} ja hänen koulunsa puhelin on {PHONE}.",
    "Lääkärille {TSUR_ALL} terveisiä: lääkitys toimii, verenpaine {BP}.",
    "{SURONLY} hoiti asiani nopeasti {UNIT_INE}.",
    "kiitos {LOWERFIRST} ystävällisyydestä, hoito oli hyvää {DATE}.",
    "{UNIT:Salon päivystys} oli ruuhkainen {DATE}, odotus kesti {DURATION}.",
    "{WORD:Hoitopolku 2} toimi hyvin, mutta jonotin silti {DURATION} ja maksoin {PRICE}.",
)
_SV_TEMPLATES = (
    "Tack till sjuksköterskan {TFIRST} på {UNIT_SV}!",
    "Läkaren {SVTSUR} var mycket vänlig, jag väntade {DURATION} den {DATE}.",
    "Ring mig på {PHONE}, jag bor på {ADDRESS_SV}.",
    "Min personbeteckning är {HETU}.",
    "Doktor {SVTSUR} hade bara {DURATION} tid för mig kl. {TIME}.",
    "Återbetalning till konto {IBAN}, jag betalade {PRICE} för mycket.",
    "Skicka svar till {EMAIL} eller ring {PHONE}.",
    "{SVFULL} på {UNIT_SV} hjälpte mig mycket.",
    "Tack {SVFIRST} för ett gott bemötande {DATE}!",
    "Jag bor på {ADDRESS_SV} och hemvården kom {DURATION} för sent.",
    "Min son ({HETU}) fick tid först {DATE} kl. {TIME}.",
    "Mottagningen är öppen {TIMERANGE}, men ingen svarar på {PHONE}.",
)
_EN_TEMPLATES = (
    "Dr. {ENSUR} was very kind on {DATE}.",
    "Please call me at {PHONE} or email {EMAIL}.",
    "Nurse {ENTFIRST} helped me a lot, I had waited {DURATION}.",
    "{ENFULL} from the {UNIT_EN} never called back.",
    "My IBAN is {IBAN}, I was charged {PRICE} twice.",
    "My personal identity code is {HETU}, please check my records.",
    "I live at {ADDRESS} and the home care visit was {DURATION} late.",
    "Thanks to {ENFIRST} at the {UNIT_EN}, the visit on {DATE} at {TIME} went well.",
    "The clinic is open {TIMERANGE} but I waited {DURATION} at the {UNIT_EN}.",
    "I was sent to {ORG:Kela} and back {COUNT} times. My number is {PHONE}.",
    "Doctor {ENSUR} and nurse {ENTFIRST} explained everything, thank you!",
    "Reply to {EMAIL}; my code {HETU} should be in the system since {YEAR}.",
)

_IDENTIFIER_SLOTS = {
    "HETU": "HETU", "BADHETU": "ID", "PHONE": "PHONE", "EMAIL": "EMAIL", "IBAN": "IBAN",
    "ADDRESS": "ADDRESS", "ADDRESS_SV": "ADDRESS",
}
# {SLOT} is filled by _fill; {KIND:text} is a literal hard negative of that kind.
_SLOT = re.compile(r"\{([A-Z_]+)(?::([^}]*))?\}")


def _iban(rng: random.Random) -> str:
    country = "FI" if rng.random() < 0.6 else rng.choice([c for c in _IBAN_BBAN if c != "FI"])
    return generate_iban(rng, country, spaced=rng.random() < 0.6)


def _hetu(rng: random.Random) -> str:
    h = generate_hetu(rng)
    return h.lower() if rng.random() < 0.05 else h


def _fill(slot: str, rng: random.Random, lang: str) -> tuple[str, str | None]:
    """(text, kind): kind is a placeholder type, a hard-negative kind, or None."""
    if slot in _IDENTIFIER_SLOTS:
        kind = _IDENTIFIER_SLOTS[slot]
        value = {"HETU": _hetu, "BADHETU": generate_bad_hetu, "PHONE": generate_phone, "EMAIL": _email,
                 "IBAN": _iban, "ADDRESS": _address,
                 "ADDRESS_SV": lambda r: _address(r, swedish=True)}[slot](rng)
        return value, kind
    fi_sv = ("fi", "sv")
    names: dict[str, Callable[[], str]] = {
        "FULL": lambda: f"{_pick_first(rng, fi_sv, False).name} {rng.choice(_FI_SURNAMES + _SV_SURNAMES)}",
        "FULL_ALL": lambda: (f"{_pick_first(rng, fi_sv, False).name} "
                             f"{_surname_forms(rng.choice(_FI_SURNAMES))['all']}"),
        "FIRST": lambda: _pick_first(rng, ("fi",), True).name,
        "FIRST_ALL": lambda: _pick_first(rng, fi_sv, True).form("all"),
        "FIRST_ELA": lambda: _pick_first(rng, ("fi",), True).form("ela"),
        "TFIRST": lambda: _pick_first(rng, fi_sv, False).name,
        "TSUR": lambda: rng.choice(_FI_SURNAMES + _SV_SURNAMES),
        "TSUR_ALL": lambda: _surname_forms(rng.choice(_FI_SURNAMES + _SV_SURNAMES))["all"],
        "TFULL": lambda: (f"{_pick_first(rng, fi_sv, False).name}-{_pick_first(rng, ('fi',), False).name} "
                          f"{rng.choice(_FI_SURNAMES)}") if rng.random() < 0.2 else
                         f"{_pick_first(rng, fi_sv, False).name} {rng.choice(_FI_SURNAMES)}",
        "TFULL_GEN": lambda: (f"{_pick_first(rng, fi_sv, False).name} "
                              f"{_surname_forms(rng.choice(_FI_SURNAMES))['gen']}"),
        "SVFULL": lambda: f"{_pick_first(rng, ('sv',), False).name} {rng.choice(_SV_SURNAMES)}",
        "SVFIRST": lambda: _pick_first(rng, ("sv",), True).name,
        "SVTSUR": lambda: rng.choice(_SV_SURNAMES),
        "ENFULL": lambda: f"{_pick_first(rng, ('intl',), False).name} {rng.choice(_EN_SURNAMES)}",
        "ENFIRST": lambda: _pick_first(rng, ("intl",), True).name,
        "ENTFIRST": lambda: _pick_first(rng, ("intl", "fi"), False).name,
        "ENSUR": lambda: rng.choice(_EN_SURNAMES),
        "SURONLY": lambda: rng.choice(_FI_SURNAMES),
        "LOWERFIRST": lambda: _pick_first(rng, ("fi",), True).form("all").lower(),
    }
    if slot in names:
        return names[slot](), "NAME"
    negatives: dict[str, Callable[[], str]] = {
        "DATE": lambda: _date(rng), "TIME": lambda: _time(rng), "TIMERANGE": lambda: _timerange(rng),
        "PRICE": lambda: _price(rng), "POSTAL": lambda: rng.choice(_CITIES)[0],
        "DURATION": lambda: _duration(rng, lang), "YEAR": lambda: str(rng.randint(1930, 2026)),
        "UNIT_INE": lambda: rng.choice(_UNITS_INE), "UNIT_GEN": lambda: rng.choice(_UNITS_GEN),
        "UNIT_SV": lambda: rng.choice(_UNITS_SV), "UNIT_EN": lambda: rng.choice(_UNITS_EN),
        "ORG": lambda: rng.choice(_ORGS), "BP": lambda: f"{rng.randint(100, 190)}/{rng.randint(60, 110)}",
        "COUNT": lambda: str(rng.randint(1, 12)),
    }
    return negatives[slot](), slot


def _render(template: str, rng: random.Random, lang: str) -> PlantedText:
    parts: list[str] = []
    spans: list[PlantedSpan] = []
    negatives: list[PlantedSpan] = []
    pos = last = 0
    for m in _SLOT.finditer(template):
        literal = template[last:m.start()]
        parts.append(literal)
        pos += len(literal)
        if m.group(2) is not None:  # {KIND:literal}: a fixed hard negative
            value, kind = m.group(2), m.group(1)
        else:
            value, kind = _fill(m.group(1), rng, lang)
        target = spans if kind in PLACEHOLDER_TYPES else negatives
        if kind is not None:
            target.append(PlantedSpan(kind, pos, pos + len(value)))
        parts.append(value)
        pos += len(value)
        last = m.end()
    parts.append(template[last:])
    return PlantedText("".join(parts), lang, tuple(spans), tuple(negatives))


def generate(n: int = 1200, seed: int = 7) -> list[PlantedText]:
    """``n`` labelled texts (about 70 % Finnish, 15 % Swedish, 15 % English); same seed, same set."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r = rng.random()
        lang, templates = ("fi", _FI_TEMPLATES) if r < 0.7 else ("sv", _SV_TEMPLATES) if r < 0.85 \
            else ("en", _EN_TEMPLATES)
        out.append(_render(rng.choice(templates), rng, lang))
    return out


# --- evaluation ----------------------------------------------------------------------

def _covers(s: int, e: int, p: PlantedSpan) -> bool:
    return s <= p.start and e >= p.end


def evaluate(items: Iterable[PlantedText], max_errors: int = 20) -> RedactionReport:
    """Score ``redact`` span by span.

    A planted identifier is found (TP) if a redaction span of its type covers it,
    otherwise it is a FN. A redaction span that covers no planted identifier of its own
    type is a FP. A hard negative is "redacted" if any redaction span overlaps it.
    """
    tp = {t: 0 for t in PLACEHOLDER_TYPES}
    fp = dict(tp)
    fn = dict(tp)
    texts = negs = negs_hit = 0
    errors: list[tuple[str, str, str]] = []
    for item in items:
        texts += 1
        spans = redact(item.text).spans
        for p in item.spans:
            if any(t == p.type and _covers(s, e, p) for t, s, e in spans):
                tp[p.type] += 1
            else:
                fn[p.type] += 1
                if len(errors) < max_errors:
                    errors.append((p.type, "FN", item.text[max(0, p.start - 30):p.end + 30]))
        for t, s, e in spans:
            if not any(p.type == t and _covers(s, e, p) for p in item.spans):
                fp[t] += 1
                if len(errors) < max_errors:
                    errors.append((t, "FP", item.text[max(0, s - 30):e + 30]))
        for neg in item.negatives:
            negs += 1
            negs_hit += any(s < neg.end and neg.start < e for _, s, e in spans)
    per_type = {t: TypeScore(tp[t], fp[t], fn[t]) for t in PLACEHOLDER_TYPES}
    return RedactionReport(per_type, texts, negs, negs_hit, errors)


def format_report(report: RedactionReport) -> str:
    """A plain-text table: per type planted, TP, FP, FN, precision, recall and F1."""
    lines = [f"Redaction evaluation: {report.texts} texts, "
             f"{sum(s.planted for s in report.per_type.values())} planted identifiers, "
             f"{report.hard_negatives} hard negatives ({report.hard_negatives_redacted} redacted)",
             f"{'type':<8} {'planted':>7} {'TP':>5} {'FP':>5} {'FN':>5} {'precision':>9} {'recall':>7} {'F1':>6}"]
    for t, s in report.per_type.items():
        lines.append(f"{t:<8} {s.planted:>7} {s.tp:>5} {s.fp:>5} {s.fn:>5} {s.precision:>9.3f} "
                     f"{s.recall:>7.3f} {s.f1:>6.3f}")
    return "\n".join(lines)
