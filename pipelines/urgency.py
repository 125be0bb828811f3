"""Keyword urgency detector for Finnish, Swedish and English feedback.

Feedback that mentions self-harm, abuse of a vulnerable person or threats of
violence must reach a human quickly, so recall matters more than precision here.
Finnish is heavily inflected, so patterns match word stems.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Reason -> (pattern, weight). Weight 1.0 = explicit; lower = suggestive only.
_PATTERNS: dict[str, list[tuple[str, float]]] = {
    "self_harm": [
        # fi
        (r"itsemurh", 1.0),
        (r"\b(tapan|tappaa|tappanut|tapa) itse(ni|äni|ään|si)\b", 1.0),
        (r"\bitse(ni|äni) (hengiltä|tappaa)", 1.0),
        (r"(vahingoit|satut|viillel|viilt)\w* itse(äni|ni|ään|si|äsi)", 1.0),
        (r"\bviiltel", 0.9),
        (r"\b(en|ei) (enää )?(halua|jaksa) (enää )?elää", 1.0),
        (r"\bhaluan (vain )?kuolla", 1.0),
        (r"\b(päättää|päätän|lopettaa|lopetan|lopettamaan|päättämään) (koko )?(elämäni|päiväni|tämän elämän)", 1.0),
        (r"\belämä(ni)? (ei ole|ei tunnu) elämisen arvoi", 0.9),
        (r"\bei (ole )?(mitään )?syytä elää", 0.9),
        (r"\byliannostu", 0.7),
        # sv
        (r"självmord", 1.0),
        (r"\bta livet av mig", 1.0),
        (r"\b(skada|skadar|skära|skär) mig själv", 1.0),
        (r"\bvill inte (längre )?leva", 1.0),
        (r"\bvill (bara )?dö\b", 1.0),
        (r"\bavsluta mitt liv", 1.0),
        (r"\bsjälvskad", 1.0),
        # en
        (r"itsetuho", 1.0),
        (r"\bteen (vielä )?(itselleni|jotain itselleni)", 0.9),
        (r"\bteen jotain (peruuttamatonta|typerää) ", 0.8),
        (r"\b(hypätä|hyppään|hyppäisin|heittäydyn|heittäytyä) (\w+ )?(sillalta|junan alle|auton alle|parvekkeelta|katolta)", 1.0),
        (r"\b(otan|ottaa|nielen|niellä) (kaikki )?(pillerit|lääkkeet|tabletit) (kerralla|yhdellä kertaa)", 1.0),
        (r"\bhirtt\w* itse", 1.0),
        (r"\b(toivon|toivoisin) (että )?(olisin kuollut|kuolevani|en heräisi)", 1.0),
        (r"\b(en haluaisi|en halua) (enää )?herätä", 0.9),
        (r"\bnukahtaa(kaan)? (enkä|ja en) (enää )?herätä", 0.9),
        (r"\bolisi parempi (jos|kun) en olisi", 0.9),
        (r"\b(kaikille|muille) (olisi )?parempi ilman minua", 0.9),
        (r"\ben jaksa (enää )?(elää|tätä elämää)", 1.0),
        (r"\b(kuolemantoive|kuolla pois)", 0.8),
        (r"\b(tänker|funderar) på att (ta mitt liv|dö)", 1.0),
        (r"\b(suicidtank|självmordstank)", 1.0),
        (r"\borkar inte (längre )?leva", 1.0),
        (r"\bvill inte vakna", 0.9),
        (r"\bbättre om jag inte (fanns|levde)", 0.9),
        (r"\b(göra|gör) mig själv illa", 1.0),
        (r"\b(hoppa|kasta mig) (framför|från|ut)", 0.8),
        (r"\bta (alla )?(tabletterna|tabletter|pillren) på en gång", 1.0),
        (r"\bend it all\b", 1.0),
        (r"\bbetter off (dead|without me)", 1.0),
        (r"\b(never|not) wake up", 0.8),
        (r"\bdo something to myself", 0.9),
        (r"\bsuicid", 1.0),
        (r"\bkill(ing)? myself", 1.0),
        (r"\b(end|take|ending|taking) my (own )?life", 1.0),
        (r"\bself[- ]?harm", 1.0),
        (r"\b(hurt|harm|cut|cutting|hurting|harming) myself", 1.0),
        (r"\bwant(ed)? to die\b", 1.0),
        (r"\b(don'?t|do not|no longer) want to (live|be alive)", 1.0),
        (r"\bnot worth living", 0.9),
        (r"\boverdos", 0.7),
    ],
    "safeguarding": [
        # fi
        (r"hyväksikäy", 1.0),
        (r"\bkaltoin", 1.0),
        (r"pahoinpi(d|t)el", 1.0),
        (r"\b(lyö|löi|lyövät|lyötiin|lyödään|läimäy|tönäis|tönäisi)\w*", 0.8),
        (r"seksuaali\w* (häirin|ahdistel|hyväks|väkival)", 1.0),
        (r"\bahdistel", 0.9),
        (r"\bväkival", 0.8),
        (r"\b(jätettiin|jätetään|makasi|makaa) (\w+ )?(omiin )?(ulosteisiin|virtsaan|likaisi)", 1.0),
        (r"\b(ei saa|ei saanut|ei ole saanut) (\w+ )?(ruokaa|juotavaa|syötävää) (päiviin|koko päivänä)", 0.9),
        (r"\bheitteille", 1.0),
        (r"\blaiminly\w* (lasta|lapsen|lapsia|vanhus|äiti|isä|asukas)", 1.0),
        (r"\b(sidottiin|sidotaan|lukittiin) (sänkyyn|huoneeseen)", 0.9),
        (r"\blastensuojeluilmoitu", 0.8),
        # sv
        (r"övergrepp", 1.0),
        (r"misshand", 1.0),
        (r"vanvård", 1.0),
        (r"\b(slog|slår|slagen|knuffade|knuffar)\b", 0.8),
        (r"sexuell\w* (trakasser|övergrepp|ofredande)", 1.0),
        (r"\bofreda", 0.9),
        (r"\bvåld", 0.8),
        (r"\blåg (kvar )?i (sin egen |egen )?(avföring|urin)", 1.0),
        (r"\bfick (ingen|inte) (mat|dricka) på (hela dagen|flera dagar|dagar)", 0.9),
        (r"\borosanmäl", 0.8),
        # en
        (r"\b(riuhto|retuutt|nipist|tukist)\w*|\b(raahasi|repi|repivät|tönivät) (minua|häntä|äitiä|isää|potilasta|lasta|asukasta)", 0.8),
        (r"\bkovakoura", 0.9),
        (r"\bmustelm", 0.8),
        (r"\b(vaippa|vaippoja|vaipat) (\w+ )?(ei vaihdettu|vaihdettiin vasta|oli täynnä)", 0.9),
        (r"\bmärissä vaipoissa", 0.9),
        (r"\b(nälässä|janoissaan|kuivumassa|nestehukka)", 0.8),
        (r"\blepositeis|\bsidottiin\b|\blukittiin\b", 0.9),
        (r"\b(varasti|varastivat|vei (hänen |äidin |isän )?rahat|rahaa katosi|rahoja katosi)", 0.8),
        (r"\b(koskettel|lähentel|kähmi)", 1.0),
        (r"\bnöyryyt", 0.8),
        (r"\blapsi (on|oli) vaarassa|\blasta (lyödään|pahoinpidellään|kohdellaan kaltoin)", 1.0),
        (r"\bhårdhänt", 0.9),
        (r"\bblåmärk", 0.8),
        (r"\bblöj\w* (byttes inte|var full)", 0.9),
        (r"\b(bältes|inlåst|låstes in)", 0.9),
        (r"\bstal (pengar|hennes|hans)", 0.8),
        (r"\b(tafsa|tafsade)", 1.0),
        (r"\bfar illa\b", 1.0),
        (r"\bbruis", 0.8),
        (r"\brough(ly)? handl|\bwas (very )?rough with", 0.9),
        (r"\bleft (soiled|in soiled|without food|without water)", 0.9),
        (r"\binappropriately touch", 1.0),
        (r"\bchild (is|was) at risk", 1.0),
        (r"\babus(e|ed|ing|ive)\b", 1.0),
        (r"\bneglect(ed)?\b", 0.8),
        (r"\bsafeguarding\b", 0.9),
        (r"\b(hit|slapped|shoved|punched|kicked) (me|him|her|them|my)\b", 0.8),
        (r"\bassault", 1.0),
        (r"\bmolest", 1.0),
        (r"\b(left|lying) in (his|her|their|my) own (urine|faeces|feces|excrement)", 1.0),
        (r"\bsexual(ly)? (harass|abus|assault|touch)", 1.0),
        (r"\bviolen(ce|t)\b", 0.8),
    ],
    "threat": [
        # fi
        (r"\b(tapan|tapamme|ammun|ammumme|puukotan|räjäytän|poltan) (teidät|sinut|hänet|heidät|sen|ne|koko|kaikki|paikan|rakennuksen|lääkärin|hoitajan)", 1.0),
        (r"\b(tulen|tulemme) (sinne )?(ja )?(tappamaan|ampumaan|tapan|ammun|satuttamaan|hakkaamaan)", 1.0),
        (r"\b(saatte|saat) (vielä )?(katua|maksaa)", 0.8),
        (r"\bkostan\b|\bkosto\b", 0.8),
        (r"\bpommi", 0.9),
        (r"\buhka(si|sivat|illut|ili|ilee|ailu|us|uksen)", 0.8),
        (r"\bhakkaan\b", 1.0),
        # sv
        (r"\b(jag ska|jag kommer att|vi ska) (döda|skjuta|spränga|slå ihjäl|knivhugga|bränna)", 1.0),
        (r"\bdöda (er|dig|honom|henne|dem|alla)\b", 1.0),
        (r"\bbomb", 0.9),
        (r"\bhota(de|r)?\b|\bhot om våld", 0.8),
        (r"\bni ska få ångra", 0.8),
        # en
        (r"\b(pieksen|vedän (sitä |häntä |sinua )?turpaan|lyön (sinua|häntä|teitä))", 1.0),
        (r"\btiedän missä (asut|asutte|hän asuu)", 1.0),
        (r"\b(poltan|polttaa|räjäyttää) (koko )?(paikan|talon|rakennuksen|sairaalan|toimiston|terveysaseman)", 1.0),
        (r"\b(ase|aseen|haulikon|puukon) (kanssa|mukaan|mukaani)", 0.9),
        (r"\botan oikeuden omiin käsiini", 0.9),
        (r"\bjag vet var (du|ni) bor", 1.0),
        (r"\b(spöa|slå ihjäl|tända eld på|bränna ner)", 1.0),
        (r"\bta lagen i egna händer", 0.9),
        (r"\bi know where (you|she|he) lives?", 1.0),
        (r"\b(blow up|burn down) (the|this|your)", 1.0),
        (r"\btake (the law|matters) into my own hands", 0.9),
        (r"\b(i will|i'll|i am going to|i'm going to|gonna|we will|we'll) (kill|shoot|stab|hurt|burn|bomb|beat|get) (you|them|him|her|the|everyone|all|someone|somebody|that)", 1.0),
        (r"\bbomb (threat|the)", 0.9),
        (r"\bthreat(en|ened|ening)\b (to|me|us|him|her|them|staff)|\bmade threats", 0.8),
        (r"\byou('ll| will) (regret|pay for) (this|it)", 0.8),
    ],
}

REASONS: tuple[str, ...] = tuple(_PATTERNS)

_COMPILED: dict[str, list[tuple[re.Pattern[str], float]]] = {
    reason: [(re.compile(p, re.IGNORECASE), w) for p, w in pats] for reason, pats in _PATTERNS.items()
}

# Phrases that mention a trigger word in a non-urgent sense ("no abuse", "neglected
# to tell me" is still a complaint but not a safeguarding concern).
_DEFUSE = re.compile(
    r"\b(neglected to|not abusive|no abuse|ei uhkaa|ingen fara|threat of rain|verbal abuse from the public)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class UrgencyHit:
    score: float
    reasons: tuple[str, ...]


def detect_urgency(text: str) -> UrgencyHit:
    """Score in 0..1 from the strongest matching pattern and the reasons that matched."""
    if not text:
        return UrgencyHit(0.0, ())
    lowered = text.lower()
    defused = bool(_DEFUSE.search(lowered))
    best = 0.0
    reasons: list[str] = []
    for reason, patterns in _COMPILED.items():
        score = max((w for p, w in patterns if p.search(lowered)), default=0.0)
        if defused and score < 1.0:
            score *= 0.5
        if score > 0:
            reasons.append(reason)
            best = max(best, score)
    return UrgencyHit(best, tuple(reasons))
