"""Word lists the templates draw from. Every entry is a dictionary word (wamerican), so copied values
never count as non-words in the evaluation."""

from __future__ import annotations

import functools
from pathlib import Path

# ~60 assistant names: varied per example so the model learns to COPY the name from context.
ASSISTANT_NAMES: tuple[str, ...] = (
    "Quinn", "Nova", "Sam", "Alex", "Robin", "Juno", "Iris", "Milo", "Atlas", "Luna", "Orion", "Ava",
    "Max", "Leo", "Zoe", "Jasper", "Felix", "Hazel", "Ivy", "Olive", "Skye", "Wren", "Ada", "Ruby",
    "Cleo", "Ellis", "Quincy", "Rory", "Sadie", "Toby", "Vera", "Willa", "Zane", "Cora", "Eli", "Finn",
    "Gus", "Hal", "June", "Kit", "Lola", "Mabel", "Ned", "Otto", "Penny", "Rex", "Tess", "Vince",
    "Basil", "Clara", "Dora", "Edgar", "Flora", "Greta", "Hugo", "Ida", "Jules", "Lars", "Mona",
    "Nina", "Oscar", "Paige", "Echo", "Sage", "Jade",
)  # fmt: skip

# Users' names (for "my name is …" facts); disjoint from the assistant names to keep the roles apart.
USER_NAMES: tuple[str, ...] = (
    "Anna", "Ben", "Carlos", "Diana", "Emma", "Frank", "Grace", "Henry", "Isabel", "Jack", "Karen",
    "Maria", "Nathan", "Olivia", "Peter", "Rachel", "Sarah", "Thomas", "Victor", "Wendy",
    "Aaron", "Bella", "Chris", "Daniel", "Ella", "Fiona", "George", "Hannah", "Ian", "Julia", "Kevin",
    "Laura", "Mark", "Nora", "Oliver", "Paul", "Rose", "Steve", "Tina", "Walter", "Adam", "Beth",
    "Carl", "David", "Eric", "Gina", "Helen", "Jacob", "Kate", "Lucy", "Mike", "Nick", "Omar", "Pam",
    "Ray", "Sophie", "Tom", "Victoria", "Will", "Amy", "Brian", "Chloe", "Dylan", "Erin", "Gary",
    "Holly", "Jason", "Kyle", "Linda", "Megan", "Noah", "Ryan", "Tyler", "Alice", "Bob", "Joe", "Lisa",
)  # fmt: skip

COLORS: tuple[str, ...] = (
    "red", "blue", "green", "yellow", "purple", "orange", "pink", "black", "white", "gray", "teal",
    "brown", "gold", "silver", "navy blue", "light blue", "dark green", "maroon", "turquoise", "violet",
)  # fmt: skip

CITIES: tuple[str, ...] = (
    "Boston", "Chicago", "Denver", "Seattle", "Austin", "Dallas", "Miami", "Atlanta", "Portland",
    "Phoenix", "Houston", "Detroit", "Toronto", "Vancouver", "London", "Paris", "Berlin", "Madrid",
    "Rome", "Dublin", "Sydney", "Tokyo", "Chicago", "Nashville", "Memphis", "Baltimore", "Philadelphia",
    "Pittsburgh", "Cleveland", "Minneapolis", "Montreal", "Edinburgh", "Manchester", "Oslo", "Vienna",
    "Lisbon", "Amsterdam", "Melbourne", "Auckland", "Omaha",
)  # fmt: skip

PETS: tuple[str, ...] = ("dog", "cat", "rabbit", "parrot", "hamster", "turtle", "puppy", "kitten", "goldfish")

PET_NAMES: tuple[str, ...] = (
    "Buddy", "Bella", "Charlie", "Daisy", "Rocky", "Molly", "Duke", "Bear", "Pepper", "Ginger",
    "Shadow", "Biscuit", "Peanut", "Oreo", "Rusty", "Lucky", "Sunny", "Maple", "Mocha", "Pickles",
    "Cookie", "Bandit", "Toby", "Ziggy", "Muffin", "Rosie", "Otis", "Scout", "Winston",
)  # fmt: skip

FOODS: tuple[str, ...] = (
    "pizza", "pasta", "sushi", "tacos", "curry", "pancakes", "ice cream", "chocolate", "soup", "salad",
    "burgers", "noodles", "steak", "chicken", "rice", "apples", "strawberries", "cheese", "bread",
    "mango", "lasagna", "dumplings", "waffles", "popcorn",
)  # fmt: skip

JOBS: tuple[str, ...] = (
    "teacher", "nurse", "doctor", "engineer", "chef", "writer", "student", "lawyer", "farmer",
    "pilot", "designer", "programmer", "carpenter", "plumber", "firefighter", "mechanic", "baker",
    "dentist", "librarian", "musician", "painter", "scientist", "accountant", "electrician",
)  # fmt: skip

HOBBIES: tuple[str, ...] = (
    "painting", "hiking", "cooking", "reading", "gardening", "swimming", "running", "chess", "knitting",
    "fishing", "cycling", "dancing", "baking", "photography", "yoga", "singing", "camping", "skiing",
    "surfing", "climbing", "drawing", "tennis", "golf", "soccer", "basketball",
)  # fmt: skip

SPORTS_TEAMS_FREE_TOPICS: tuple[str, ...] = ()

# General questions for the teacher (open "why/how/what" questions not covered by the facts table).
TEACHER_QUESTIONS: tuple[str, ...] = (
    "how do bees make honey", "why do cats purr", "how can I fall asleep faster", "why is the ocean salty",
    "how do airplanes stay in the air", "what makes a good friend", "how can I stay focused",
    "why do leaves change color in the fall", "how do I make a cup of tea", "why do we dream",
    "what is a healthy breakfast", "how can I save money", "why do onions make you cry",
    "how do plants grow", "what should I do when I feel stressed", "how can I learn a new language",
    "why do dogs wag their tails", "how does a compass work", "what is a good way to start the day",
    "how do I make new friends", "why is exercise good for you", "how do birds fly",
    "what are some fun things to do on a rainy day", "how do I boil an egg", "why do we need sleep",
    "how do magnets work", "what makes people laugh", "how can I be more patient",
    "why do stars twinkle", "how does the moon affect the tides", "what is a good gift for a friend",
    "how do I keep my plants alive", "why do we have seasons", "how can I drink more water",
    "how does rain form", "what should I name my cat", "how do I stop procrastinating",
    "why is drinking water important", "how do fish breathe underwater", "what is a fun weekend activity",
    "how can I get better at cooking", "why do we hiccup", "how do I tie a tie",
    "what is a good way to relax", "how do volcanoes form", "why do zebras have stripes",
    "how can I improve my memory", "what should I do if I'm bored", "how do trees make oxygen",
    "why is the grass green", "how do I make pancakes", "what is a good hobby to start",
    "how can I be kinder to myself", "how do snowflakes form",
    "what can I do to feel happier", "how do I clean a cast iron pan", "why do bears hibernate",
    "how can I wake up earlier", "what is a simple dinner idea", "why do we have fingernails",
    "how do I take care of a houseplant", "how does a rainbow appear", "why do cats like boxes",
    "how can I stop worrying so much", "what makes bread rise", "how do owls see at night",
    "why is the sun hot", "how do I start running", "what is a good name for a dog",
    "how can I be a better listener", "why do we blink", "how do earthquakes happen",
    "what is a good snack", "how do I remember names better", "why do birds sing in the morning",
    "how can I make my room cozy", "why does ice float", "how do I make a paper airplane",
    "what should I plant in my garden", "how do whales sleep", "why do we sneeze",
    "how can I get more energy", "what is a good board game for a family", "why is the moon bright",
    "how do I stay calm before an interview", "how do clouds float", "why do some animals migrate",
    "how can I make my mornings easier", "what is a fun thing to do with kids",
    "how do I keep my house tidy", "why do flowers smell nice", "how do I cheer up a friend",
    "what should I do on my birthday", "why do we cry when we are happy", "how do I make a smoothie",
    "how can I be more confident", "why is chocolate so tasty", "how do hummingbirds hover",
    "what makes thunder", "how can I stop biting my nails", "how long should I nap",
)  # fmt: skip


# Names the tests and the evaluation ask about as never seen in training: kept out of every pool.
UNSEEN_TEST_NAMES: frozenset[str] = frozenset({"Zed", "Juniper"})
WORD_LIST = Path("/usr/share/dict/american-english")  # Debian's wamerican, installed by the set-up


@functools.cache
def open_names() -> tuple[str, ...]:
    """Every capitalised word of the English word list (people, places, brands: ~9,000), as names.

    The fixed name lists above are too few: the model learned each of them by heart and copied an unseen
    name only in part ("The name is Jun." for Juniper). Names drawn from thousands, most of them several
    tokens long, teach it to copy whole spans. Sorted, so a seeded draw is reproducible.
    """
    if not WORD_LIST.is_file():
        raise FileNotFoundError(f"{WORD_LIST} is missing: install Debian's wamerican (the set-up does)")
    names = {
        w
        for w in WORD_LIST.read_text(encoding="utf-8").split()
        if 3 <= len(w) <= 11 and w.isascii() and w.isalpha() and w[0].isupper() and w[1:].islower()
    }
    return tuple(sorted(names - UNSEEN_TEST_NAMES))


# Nature words people give as names: in the word list only in lower case, so in no training pool.
_PROBE_NAMES: tuple[str, ...] = (
    "Juniper", "Marigold", "Bramble", "Clementine", "Saffron", "Thistle", "Wisteria", "Lavender",
    "Magnolia", "Cypress", "Sorrel", "Tamarind", "Willow", "Aspen", "Briar", "Cobalt", "Indigo",
    "Sparrow", "Falcon", "Pebble", "Tinsel", "Zinnia", "Hickory", "Meadow", "Nutmeg", "Cinnamon",
    "Heather", "Maple", "Poppy", "Ginger", "Clover", "Hazelnut", "Peregrine", "Kestrel", "Lupine",
    "Tangerine", "Bluebell", "Primrose", "Buttercup", "Sequoia",
)  # fmt: skip


def unseen_names() -> list[str]:
    """Name-like words in no training pool ("Juniper", "Marigold"), most of several tokens: the
    evaluation's probe of copying a name the model has never seen."""
    pool = set(open_names()) | set(ASSISTANT_NAMES) | set(USER_NAMES) | set(PET_NAMES)
    return [n for n in _PROBE_NAMES if n not in pool]
