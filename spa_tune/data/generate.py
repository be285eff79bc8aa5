"""A small, deterministic, learnable SQuAD-format data set for offline runs and tests.

Each paragraph states three to five facts about one made-up person (birth city, job, favourite
colour, a year, a pet, siblings, an instrument); each kind of fact appears at most once per
paragraph, so the question's wording tells which span is meant. Answers are exact spans of the
paragraph. Values are common words that the bert-base-uncased vocabulary holds as single tokens.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ..errors import SpaTuneError

FIRST = ("john mary david sarah peter anna james laura paul emma mark alice george helen frank lucy henry "
         "kate oscar ruth victor diana simon clara martin rose adam julia carl nina").split()
LAST = "smith jones adams miller wilson taylor clark hall young king wright scott lewis walker hill moore".split()
CITIES = ("paris london berlin madrid rome vienna tokyo cairo boston chicago dublin moscow sydney toronto "
          "lisbon athens oslo prague warsaw denver").split()
JOBS = "teacher doctor farmer lawyer pilot nurse baker painter engineer writer singer driver soldier judge chef".split()
COLOURS = "red blue green yellow purple orange black white brown pink gray silver".split()
ANIMALS = "dog cat horse rabbit parrot goat pig duck snake turtle".split()
PET_NAMES = "rex luna milo coco buddy daisy rocky ginger shadow pepper".split()
NUMBERS = "two three four five six seven eight nine".split()
INSTRUMENTS = "piano guitar violin drums flute trumpet cello harp".split()
YEARS = [str(y) for y in range(1950, 2021)]

# kind: (sentence, questions, {slot: vocabulary}, slot the answer is)
FACTS = {
    "city": ("{name} was born in {city}.", ["Where was {first} born?", "In which city was {first} born?"],
             {"city": CITIES}, "city"),
    "job": ("{first} works as a {job}.", ["What is {first}'s job?", "What does {first} do for a living?"],
            {"job": JOBS}, "job"),
    "colour": ("{first}'s favourite colour is {colour}.", ["What is {first}'s favourite colour?",
               "Which colour does {first} like best?"], {"colour": COLOURS}, "colour"),
    "year": ("In {year}, {first} moved to a new house.", ["In what year did {first} move?",
             "When did {first} move to a new house?"], {"year": YEARS}, "year"),
    "animal": ("{first} owns a {animal} called {pet}.", ["What animal does {first} own?",
               "What kind of pet does {first} have?"], {"animal": ANIMALS, "pet": PET_NAMES}, "animal"),
    "pet": ("The pet of {first} is named {pet}.", ["What is the name of {first}'s pet?",
            "What is {first}'s pet called?"], {"pet": PET_NAMES}, "pet"),
    "siblings": ("{first} has {number} brothers.", ["How many brothers does {first} have?",
                 "What is the number of {first}'s brothers?"], {"number": NUMBERS}, "number"),
    "instrument": ("{first} plays the {instrument}.", ["Which instrument does {first} play?",
                   "What instrument can {first} play?"], {"instrument": INSTRUMENTS}, "instrument"),
}
# the animal sentence also names the pet, so a "pet name" question would have two answers
CONFLICTS = [{"animal", "pet"}]
PARAGRAPHS_PER_ARTICLE = 10


def _paragraph(rng: random.Random) -> tuple[str, list[tuple[str, str, int]]]:
    """One paragraph and its (question, answer, answer_start) triples."""
    first, last = rng.choice(FIRST).capitalize(), rng.choice(LAST).capitalize()
    context, qas = "", []
    for kind in _fact_kinds(rng):
        template, questions, slots, answer_slot = FACTS[kind]
        values = {slot: rng.choice(vocab).capitalize() if slot == "city" else rng.choice(vocab)
                  for slot, vocab in slots.items()}
        fields = dict(values, name=f"{first} {last}", first=first)
        sentence = template.format(**fields)
        sentence = sentence[0].upper() + sentence[1:]
        start = len(context) + (1 if context else 0) + _answer_offset(template, answer_slot, fields)
        context = f"{context} {sentence}" if context else sentence
        qas.append((rng.choice(questions).format(first=first), values[answer_slot], start))
    return context, qas


def _fact_kinds(rng: random.Random) -> list[str]:
    """``city`` then 2-4 other distinct fact kinds, never two that could answer the same question."""
    wanted = rng.randint(2, 4)
    others = sorted(k for k in FACTS if k != "city")
    rng.shuffle(others)
    kinds: list[str] = []
    for kind in others:
        if len(kinds) < wanted and not any({kind, chosen} in CONFLICTS for chosen in kinds):
            kinds.append(kind)
    return ["city", *kinds]


def _answer_offset(template: str, slot: str, fields: dict[str, str]) -> int:
    """Character offset of ``{slot}`` inside ``template`` once formatted with ``fields``."""
    return len(template.split("{" + slot + "}")[0].format(**fields))


def generate_squad(num_questions: int, seed: int, title_prefix: str = "generated",
                   exclude_contexts: set[str] | None = None) -> dict:
    """Exactly ``num_questions`` questions in the official nested SQuAD v1.1 layout.

    The same arguments always give the same data; contexts in ``exclude_contexts`` are skipped.
    """
    if num_questions < 1:
        raise SpaTuneError(f"generated data: the number of questions must be at least 1, got {num_questions}")
    rng = random.Random(seed)
    seen = set(exclude_contexts or ())
    articles: list[dict] = []
    count = 0
    while count < num_questions:
        context, qas = _paragraph(rng)
        if context in seen:
            continue
        seen.add(context)
        if not articles or len(articles[-1]["paragraphs"]) == PARAGRAPHS_PER_ARTICLE:
            articles.append({"title": f"{title_prefix}_{seed}_{len(articles)}", "paragraphs": []})
        keep = qas[: num_questions - count]
        articles[-1]["paragraphs"].append({
            "context": context,
            "qas": [{"id": f"{title_prefix}-{seed}-{count + i:06d}", "question": q,
                     "answers": [{"text": a, "answer_start": s}]} for i, (q, a, s) in enumerate(keep)],
        })
        count += len(keep)
    return {"version": "1.1", "data": articles}


def contexts_of(squad: dict) -> set[str]:
    """All paragraph contexts of a nested SQuAD dict."""
    return {p["context"] for article in squad["data"] for p in article["paragraphs"]}


def write_generated_squad(out_dir: str | Path, num_train: int, num_eval: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``train.json`` and ``dev.json`` (disjoint paragraphs); existing identical files are kept."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train = generate_squad(num_train, seed, "train")
    dev = generate_squad(num_eval, seed + 1, "dev", exclude_contexts=contexts_of(train))
    paths = (out / "train.json", out / "dev.json")
    for path, data in zip(paths, (train, dev)):
        text = json.dumps(data, ensure_ascii=False)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
    return paths
