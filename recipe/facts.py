"""A curated table of short general-knowledge questions with correct spoken answers (written for this
project). Each row: several user phrasings → one or more answer sentences."""

from __future__ import annotations

Row = tuple[tuple[str, ...], tuple[str, ...]]

CAPITALS: tuple[tuple[str, str], ...] = (
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
    ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"), ("Canada", "Ottawa"),
    ("Australia", "Canberra"), ("Brazil", "Brasilia"), ("Mexico", "Mexico City"),
    ("Russia", "Moscow"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Greece", "Athens"), ("Ireland", "Dublin"),
    ("England", "London"), ("Scotland", "Edinburgh"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Poland", "Warsaw"), ("Austria", "Vienna"),
    ("Switzerland", "Bern"), ("Belgium", "Brussels"), ("the Netherlands", "Amsterdam"), ("Turkey", "Ankara"),
    ("South Korea", "Seoul"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("Indonesia", "Jakarta"),
    ("the Philippines", "Manila"), ("Peru", "Lima"), ("Chile", "Santiago"),
    ("Cuba", "Havana"), ("the United States", "Washington"), ("Hungary", "Budapest"), ("Iceland", "Reykjavik"),
    ("Israel", "Jerusalem"), ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Pakistan", "Islamabad"),
    ("New Zealand", "Wellington"), ("Nigeria", "Abuja"), ("Czechia", "Prague"),
    ("Romania", "Bucharest"), ("Morocco", "Rabat"), ("Venezuela", "Caracas"),
    ("Jamaica", "Kingston"), ("Singapore", "Singapore"), ("Bulgaria", "Sofia"),
    ("Croatia", "Zagreb"), ("Serbia", "Belgrade"),
)  # fmt: skip

CAPITAL_Q = (
    "What is the capital of {c}?", "What's the capital of {c}?", "Capital of {c}?", "Do you know the capital of {c}?",
    "Tell me the capital of {c}.", "Which city is the capital of {c}?", "What city is the capital of {c}?",
)  # fmt: skip
CAPITAL_A = ("The capital of {c} is {k}.", "The capital is {k}.", "{k} is the capital of {c}.")

LEGS: tuple[tuple[str, str, str], ...] = (
    ("a spider", "spiders", "eight"), ("a dog", "dogs", "four"), ("a cat", "cats", "four"), ("a horse", "horses", "four"),
    ("an ant", "ants", "six"), ("a bee", "bees", "six"), ("a chicken", "chickens", "two"), ("a duck", "ducks", "two"),
    ("an octopus", "octopuses", "An octopus has eight arms, not legs."), ("a cow", "cows", "four"),
    ("a butterfly", "butterflies", "six"), ("a crab", "crabs", "A crab has ten legs, counting its two claws."),
    ("a snake", "snakes", "A snake has no legs at all."), ("a kangaroo", "kangaroos", "two strong back"),
    ("an elephant", "elephants", "four"), ("a penguin", "penguins", "two"), ("a beetle", "beetles", "six"),
    ("a frog", "frogs", "four"), ("a fish", "fish", "A fish has no legs. It uses fins to swim."),
    ("a human", "people", "two"),
)  # fmt: skip

SOUNDS: tuple[tuple[str, str], ...] = (
    ("a cow", "moo"), ("a dog", "woof"), ("a cat", "meow"), ("a duck", "quack"), ("a sheep", "baa"),
    ("a pig", "oink"), ("an owl", "hoot"), ("a horse", "neigh"), ("a rooster", "cock a doodle do"),
    ("a lion", "roar"), ("a snake", "hiss"), ("a frog", "croak"), ("a bee", "buzz"), ("a mouse", "squeak"),
    ("a goat", "baa"),
)  # fmt: skip

BABIES: tuple[tuple[str, str], ...] = (
    ("dog", "a puppy"), ("cat", "a kitten"), ("cow", "a calf"), ("horse", "a foal"), ("sheep", "a lamb"),
    ("goat", "a kid"), ("frog", "a tadpole"), ("duck", "a duckling"), ("bear", "a cub"), ("lion", "a cub"),
    ("kangaroo", "a joey"), ("deer", "a fawn"), ("pig", "a piglet"), ("goose", "a gosling"), ("swan", "a cygnet"),
    ("owl", "an owlet"), ("butterfly", "a caterpillar"), ("whale", "a calf"),
)  # fmt: skip

OPPOSITES: tuple[tuple[str, str], ...] = (
    ("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("happy", "sad"), ("light", "dark"),
    ("open", "closed"), ("old", "young"), ("early", "late"), ("full", "empty"), ("hard", "soft"), ("loud", "quiet"),
    ("wet", "dry"), ("strong", "weak"), ("rich", "poor"), ("tall", "short"), ("day", "night"), ("left", "right"),
    ("win", "lose"), ("push", "pull"), ("begin", "end"), ("heavy", "light"), ("true", "false"), ("near", "far"),
)  # fmt: skip

COLOR_MIX: tuple[tuple[str, str, str], ...] = (
    ("blue", "yellow", "green"), ("red", "yellow", "orange"), ("red", "blue", "purple"), ("red", "white", "pink"),
    ("black", "white", "gray"), ("blue", "white", "light blue"),
)  # fmt: skip

# Free rows: (phrasings, answers).
MISC: tuple[Row, ...] = (
    # time and calendar knowledge (general, not the current time)
    (("How many days are in a week?", "How many days does a week have?"), ("There are seven days in a week.",)),
    (("How many days are in a year?", "How many days does a year have?"), ("A year has 365 days, or 366 in a leap year.",)),
    (("How many months are in a year?", "How many months does a year have?"), ("There are twelve months in a year.",)),
    (("How many hours are in a day?", "How many hours does a day have?"), ("There are 24 hours in a day.",)),
    (("How many minutes are in an hour?", "How many minutes make an hour?"), ("There are 60 minutes in an hour.",)),
    (("How many seconds are in a minute?", "How many seconds make a minute?"), ("There are 60 seconds in a minute.",)),
    (("How many weeks are in a year?", "How many weeks does a year have?"), ("A year has 52 weeks, plus a day or two.",)),
    (("How many days are in February?", "How long is February?"), ("February has 28 days, or 29 in a leap year.",)),
    (("What is a leap year?", "What's a leap year?"), ("A leap year has 366 days. February gets an extra day every four years.",)),
    (("What are the four seasons?", "Name the seasons."), ("The four seasons are spring, summer, fall and winter.",)),
    (("What is the first month of the year?", "Which month comes first in the year?"), ("The first month is January.",)),
    (("What is the last month of the year?", "Which month is last?"), ("The last month of the year is December.",)),
    (("How many days are in a decade?",), ("A decade is ten years, which is about 3,650 days.",)),
    (("How many years are in a century?", "How long is a century?"), ("A century is one hundred years.",)),
    # units
    (("How many centimeters are in a meter?", "How many centimeters make a meter?"), ("There are 100 centimeters in a meter.",)),
    (("How many meters are in a kilometer?", "How many meters make a kilometer?"), ("There are 1,000 meters in a kilometer.",)),
    (("How many grams are in a kilogram?", "How many grams make a kilogram?"), ("There are 1,000 grams in a kilogram.",)),
    (("How many inches are in a foot?", "How many inches make a foot?"), ("There are twelve inches in a foot.",)),
    (("How many feet are in a yard?", "How many feet make a yard?"), ("There are three feet in a yard.",)),
    (("How many feet are in a mile?", "How long is a mile in feet?"), ("A mile is 5,280 feet.",)),
    (("How many ounces are in a pound?", "How many ounces make a pound?"), ("There are sixteen ounces in a pound.",)),
    (("How many cups are in a quart?",), ("There are four cups in a quart.",)),
    (("How many quarts are in a gallon?",), ("There are four quarts in a gallon.",)),
    (("How long is a mile in kilometers?", "How many kilometers is a mile?"), ("A mile is about 1.6 kilometers.",)),
    (("How many pounds are in a kilogram?", "How heavy is a kilogram in pounds?"), ("A kilogram is about 2.2 pounds.",)),
    (("How many milliliters are in a liter?",), ("There are 1,000 milliliters in a liter.",)),
    (("How many cents are in a dollar?", "How many pennies make a dollar?"), ("There are 100 cents in a dollar.",)),
    (("How many things are in a dozen?", "How many is a dozen?"), ("A dozen is twelve.",)),
    (("At what temperature does water freeze?", "When does water freeze?"), ("Water freezes at 0 degrees Celsius, or 32 degrees Fahrenheit.",)),
    (("At what temperature does water boil?", "When does water boil?"), ("Water boils at 100 degrees Celsius, or 212 degrees Fahrenheit, at sea level.",)),
    (("What is a normal body temperature?", "What's a normal human body temperature?"), ("About 37 degrees Celsius, or 98.6 degrees Fahrenheit.",)),
    # space
    (("How many planets are in our solar system?", "How many planets are there?"), ("There are eight planets in our solar system.",)),
    (("What is the biggest planet?", "Which planet is the largest?"), ("Jupiter is the biggest planet in our solar system.",)),
    (("What is the smallest planet?", "Which planet is the smallest?"), ("Mercury is the smallest planet.",)),
    (("Which planet is closest to the sun?", "What's the closest planet to the sun?"), ("Mercury is the closest planet to the sun.",)),
    (("Which planet is the hottest?", "What's the hottest planet?"), ("Venus is the hottest planet, because its thick clouds trap heat.",)),
    (("Which planet is the red planet?", "What planet is red?"), ("Mars is known as the red planet.",)),
    (("Which planet has rings?", "What planet has big rings?"), ("Saturn is famous for its rings.",)),
    (("Which planet do we live on?", "What planet are we on?"), ("We live on Earth, the third planet from the sun.",)),
    (("What is the farthest planet from the sun?", "Which planet is farthest from the sun?"), ("Neptune is the farthest planet from the sun.",)),
    (("Is Pluto a planet?", "Is Pluto still a planet?"), ("Pluto is now called a dwarf planet.",)),
    (("What is the sun?", "Is the sun a star?"), ("The sun is a star, a huge ball of hot gas.",)),
    (("How far is the moon?", "How far away is the moon?"), ("The moon is about 384,000 kilometers from Earth.",)),
    (("How far is the sun?", "How far away is the sun?"), ("The sun is about 150 million kilometers away.",)),
    (("How long does it take light from the sun to reach us?",), ("Sunlight takes about eight minutes to reach Earth.",)),
    (("Who was the first person on the moon?", "Who first walked on the moon?"), ("Neil Armstrong was the first person on the moon, in 1969.",)),
    (("What is a galaxy?",), ("A galaxy is a huge group of stars, gas and dust held together by gravity.",)),
    (("What galaxy do we live in?", "What is our galaxy called?"), ("We live in the Milky Way galaxy.",)),
    (("How long does the Earth take to go around the sun?",), ("The Earth takes about 365 days to go around the sun.",)),
    (("How long does the Earth take to spin once?",), ("The Earth spins once about every 24 hours.",)),
    (("What is a shooting star?",), ("A shooting star is a small rock burning up as it enters our air.",)),
    (("How many moons does Earth have?", "How many moons do we have?"), ("Earth has one moon.",)),
    (("How many moons does Mars have?",), ("Mars has two small moons.",)),
    # earth and geography
    (("What is the biggest ocean?", "Which ocean is the largest?"), ("The Pacific is the biggest ocean.",)),
    (("How many oceans are there?",), ("There are five oceans: Pacific, Atlantic, Indian, Southern and Arctic.",)),
    (("How many continents are there?", "How many continents does the world have?"), ("There are seven continents.",)),
    (("What are the continents?", "Name the continents."), ("Africa, Antarctica, Asia, Australia, Europe, North America and South America.",)),
    (("What is the tallest mountain?", "What's the highest mountain in the world?"), ("Mount Everest is the tallest mountain, at about 8,849 meters.",)),
    (("What is the longest river?", "Which river is the longest?"), ("The Nile is usually called the longest river.",)),
    (("What is the biggest desert?", "Which desert is the largest?"), ("Antarctica is the largest desert. The Sahara is the biggest hot desert.",)),
    (("What is the biggest country?", "Which country is the largest?"), ("Russia is the biggest country by area.",)),
    (("What is the smallest country?", "Which country is the smallest?"), ("Vatican City is the smallest country.",)),
    (("Which country has the most people?", "What's the most populated country?"), ("India has the most people, followed closely by China.",)),
    (("What is the biggest continent?", "Which continent is the largest?"), ("Asia is the biggest continent.",)),
    (("Where is the Eiffel Tower?", "Which city has the Eiffel Tower?"), ("The Eiffel Tower is in Paris, France.",)),
    (("Where are the pyramids?", "Which country has the great pyramids?"), ("The great pyramids are in Egypt.",)),
    (("Where is the Great Wall?", "Which country has the Great Wall?"), ("The Great Wall is in China.",)),
    (("Where is the Statue of Liberty?",), ("The Statue of Liberty is in New York.",)),
    (("Where do kangaroos live?",), ("Kangaroos live in Australia.",)),
    (("Where do penguins live?",), ("Most penguins live in the southern half of the world, many near Antarctica.",)),
    (("Where do polar bears live?",), ("Polar bears live in the Arctic, near the North Pole.",)),
    (("What is the biggest lake?",), ("The Caspian Sea is the biggest lake in the world.",)),
    (("What language do they speak in Brazil?",), ("People in Brazil speak Portuguese.",)),
    (("What language do they speak in Mexico?",), ("People in Mexico speak Spanish.",)),
    (("What language do they speak in Japan?",), ("People in Japan speak Japanese.",)),
    (("What language do they speak in Germany?",), ("People in Germany speak German.",)),
    (("What language do they speak in Canada?",), ("Canada has two official languages, English and French.",)),
    (("How many states are in the United States?", "How many states does America have?"), ("The United States has 50 states.",)),
    (("What is the biggest state in America?",), ("Alaska is the biggest state.",)),
    (("What is the biggest city in the world?",), ("Tokyo is one of the biggest cities in the world.",)),
    # animals
    (("What is the biggest animal?", "What's the largest animal in the world?"), ("The blue whale is the biggest animal ever known.",)),
    (("What is the fastest animal?", "What's the fastest land animal?"), ("The cheetah is the fastest land animal.",)),
    (("What is the tallest animal?", "Which animal is the tallest?"), ("The giraffe is the tallest animal.",)),
    (("What is the biggest bird?", "Which bird is the largest?"), ("The ostrich is the biggest bird.",)),
    (("What is the smallest bird?", "Which bird is the smallest?"), ("The bee hummingbird is the smallest bird.",)),
    (("Is a whale a fish?", "Are whales fish?"), ("No, a whale is a mammal. It breathes air.",)),
    (("Is a bat a bird?", "Are bats birds?"), ("No, a bat is a mammal, but it can fly.",)),
    (("Is a spider an insect?", "Are spiders insects?"), ("No, a spider is not an insect. It has eight legs.",)),
    (("Can penguins fly?", "Do penguins fly?"), ("No, penguins can't fly, but they are great swimmers.",)),
    (("Can ostriches fly?",), ("No, ostriches can't fly, but they run very fast.",)),
    (("What do cows eat?",), ("Cows mostly eat grass and hay.",)),
    (("What do pandas eat?",), ("Pandas eat mostly bamboo.",)),
    (("What do bees make?",), ("Bees make honey and wax.",)),
    (("What do caterpillars turn into?",), ("Caterpillars turn into butterflies or moths.",)),
    (("What is a group of lions called?",), ("A group of lions is called a pride.",)),
    (("What is a group of wolves called?",), ("A group of wolves is called a pack.",)),
    (("What is a group of fish called?",), ("A group of fish is called a school.",)),
    (("What is a group of crows called?",), ("A group of crows is called a murder.",)),
    (("How long do dogs live?",), ("Most dogs live about ten to thirteen years.",)),
    (("How long do cats live?",), ("Most cats live about twelve to eighteen years.",)),
    (("How long can a turtle live?",), ("Some turtles live more than one hundred years.",)),
    (("Do fish sleep?",), ("Yes, fish rest, but most of them keep their eyes open.",)),
    (("How many hearts does an octopus have?",), ("An octopus has three hearts.",)),
    (("Why do cats purr?",), ("Cats often purr when they are happy, and sometimes to calm themselves.",)),
    (("What is a mammal?",), ("A mammal is a warm blooded animal with hair that feeds its babies milk.",)),
    (("What is the king of the jungle?",), ("The lion is called the king of the jungle.",)),
    (("How fast can a cheetah run?",), ("A cheetah can run about 110 kilometers per hour.",)),
    (("What animal has a trunk?",), ("The elephant has a trunk.",)),
    (("What animal has black and white stripes?",), ("The zebra has black and white stripes.",)),
    (("Do snakes have ears?",), ("Snakes have no outer ears, but they can feel sounds through the ground.",)),
    # science
    (("What is water made of?", "What is the formula for water?"), ("Water is made of hydrogen and oxygen. Its formula is H2O.",)),
    (("What gas do we breathe in?", "What do we breathe?"), ("We breathe in oxygen.",)),
    (("What gas do plants take in?", "What do plants breathe?"), ("Plants take in carbon dioxide and give off oxygen.",)),
    (("What is photosynthesis?",), ("Photosynthesis is how plants use sunlight to make food from water and air.",)),
    (("Why is the sky blue?", "How come the sky is blue?"), ("Air scatters blue sunlight more than other colors, so the sky looks blue.",)),
    (("What is gravity?",), ("Gravity is the pull that makes things fall and keeps us on the ground.",)),
    (("Who discovered gravity?",), ("Isaac Newton described gravity after, as the story goes, an apple fell.",)),
    (("What is the speed of light?", "How fast is light?"), ("Light travels about 300,000 kilometers per second.",)),
    (("What is the speed of sound?", "How fast is sound?"), ("Sound travels about 343 meters per second in air.",)),
    (("What is the hardest natural material?",), ("Diamond is the hardest natural material.",)),
    (("What is the largest organ of the body?",), ("The skin is the largest organ of the body.",)),
    (("How many bones are in the human body?", "How many bones do adults have?"), ("An adult has 206 bones.",)),
    (("How many teeth do adults have?",), ("Most adults have 32 teeth.",)),
    (("What does the heart do?",), ("The heart pumps blood around your body.",)),
    (("What do the lungs do?",), ("The lungs take in oxygen and let out carbon dioxide.",)),
    (("What is the biggest bone in the body?",), ("The thigh bone, called the femur, is the biggest bone.",)),
    (("What is DNA?",), ("DNA carries the instructions that tell living things how to grow and work.",)),
    (("What are the three states of matter?",), ("Solid, liquid and gas.",)),
    (("What is an atom?",), ("An atom is a tiny building block of everything around us.",)),
    (("What is electricity?",), ("Electricity is the flow of tiny charged particles, usually through wires.",)),
    (("What makes a rainbow?", "How do rainbows form?"), ("Sunlight bends inside raindrops and splits into its colors.",)),
    (("What are the colors of the rainbow?",), ("Red, orange, yellow, green, blue, indigo and violet.",)),
    (("What causes thunder?",), ("Thunder is the sound of air heating and expanding fast around lightning.",)),
    (("Why do we have seasons?",), ("The Earth is tilted, so each half gets more or less sunlight during the year.",)),
    (("What causes the tides?",), ("The moon's gravity pulls on the oceans and causes the tides.",)),
    (("What is the boiling point of water?",), ("Water boils at 100 degrees Celsius at sea level.",)),
    (("What is the chemical symbol for gold?",), ("The chemical symbol for gold is Au.",)),
    (("What is the most common gas in the air?",), ("Nitrogen makes up most of the air, about 78 percent.",)),
    (("What is a volcano?",), ("A volcano is an opening in the ground where hot melted rock comes out.",)),
    (("What is an earthquake?",), ("An earthquake is a shaking of the ground when rocks deep below suddenly move.",)),
    (("What is a magnet?",), ("A magnet is an object that pulls on iron and some other metals.",)),
    (("Why do we need sleep?",), ("Sleep lets your body rest and repair, and helps your brain store memories.",)),
    (("Why do leaves change color?",), ("In fall, trees stop making green chlorophyll, so other colors show through.",)),
    (("Why is the ocean salty?",), ("Rivers carry tiny bits of salt from rocks into the sea, and it builds up.",)),
    (("What is the closest star to Earth?",), ("The sun is the closest star to Earth.",)),
    (("How hot is the sun?",), ("The surface of the sun is about 5,500 degrees Celsius.",)),
    (("What is a black hole?",), ("A black hole is a place in space where gravity is so strong that not even light escapes.",)),
    # famous people and inventions
    (("Who painted the Mona Lisa?",), ("Leonardo painted the Mona Lisa, about five hundred years ago.",)),
    (("Who invented the light bulb?",), ("Thomas Edison made the first practical light bulb.",)),
    (("Who invented the telephone?",), ("Alexander Graham Bell is credited with inventing the telephone.",)),
    (("Who invented the airplane?", "Who made the first airplane?"), ("The Wright brothers flew the first airplane in 1903.",)),
    (("Who wrote Romeo and Juliet?",), ("William Shakespeare wrote Romeo and Juliet.",)),
    (("Who wrote Hamlet?",), ("William Shakespeare wrote Hamlet.",)),
    (("Who was the first president of the United States?", "Who was the first American president?"), ("George Washington was the first president.",)),
    (("Who was Abraham Lincoln?",), ("Abraham Lincoln was the sixteenth president of the United States.",)),
    (("Who was Albert Einstein?",), ("Albert Einstein was a famous scientist who developed the theory of relativity.",)),
    (("Who discovered penicillin?",), ("Alexander Fleming discovered penicillin in 1928.",)),
    (("Who was Marie Curie?",), ("Marie Curie was a scientist who studied radioactivity and won two Nobel prizes.",)),
    (("Who wrote Harry Potter?",), ("J. K. Rowling wrote the Harry Potter books.",)),
    (("Who was Mozart?",), ("Mozart was a famous composer from Austria.",)),
    (("Who was Beethoven?",), ("Beethoven was a great German composer, who kept writing music even after he lost his hearing.",)),
    (("Who invented the printing press?",), ("Johannes Gutenberg invented the printing press around 1440.",)),
    (("Who discovered America?",), ("Christopher Columbus reached the Americas in 1492, though people already lived there.",)),
    (("Who was Martin Luther King?",), ("Martin Luther King was a leader of the American civil rights movement.",)),
    (("Who was Charles Darwin?",), ("Charles Darwin was a scientist known for the theory of evolution.",)),
    (("Who was Isaac Newton?",), ("Isaac Newton was a scientist who described gravity and the laws of motion.",)),
    (("Who was Cleopatra?",), ("Cleopatra was the last active queen of ancient Egypt.",)),
    (("Who was Napoleon?",), ("Napoleon was a French military leader and emperor.",)),
    (("Who was Gandhi?",), ("Gandhi was a leader who helped India become independent through peaceful protest.",)),
    (("Who invented the computer?",), ("Charles Babbage designed an early computer. Many people built the modern ones.",)),
    (("Who invented the internet?",), ("Many people built the internet together, starting in the 1960s.",)),
    (("Who was Walt Disney?",), ("Walt Disney created Mickey Mouse and started the Disney company.",)),
    (("Who wrote The Odyssey?",), ("The Odyssey is said to have been written by Homer.",)),
    (("Who was Julius Caesar?",), ("Julius Caesar was a famous leader of ancient Rome.",)),
    (("Who built the pyramids?",), ("The ancient Egyptians built the pyramids, thousands of years ago.",)),
    (("Who was the first woman to fly across the Atlantic alone?",), ("Amelia Earhart was the first woman to fly solo across the Atlantic.",)),
    # food and everyday
    (("What is cheese made from?",), ("Cheese is made from milk.",)),
    (("What is bread made from?",), ("Bread is made mostly from flour, water and yeast.",)),
    (("What is chocolate made from?",), ("Chocolate is made from cocoa beans.",)),
    (("Is a tomato a fruit?", "Are tomatoes fruit?"), ("Yes, a tomato is a fruit, though we often cook it like a vegetable.",)),
    (("Is a banana a berry?",), ("Yes, a banana is a berry.",)),
    (("Where does coffee come from?",), ("Coffee comes from the roasted seeds of the coffee plant.",)),
    (("What is tofu made from?",), ("Tofu is made from soybeans.",)),
    (("What is honey made from?",), ("Bees make honey from the nectar of flowers.",)),
    (("What vitamin do we get from the sun?",), ("Sunlight helps your body make vitamin D.",)),
    (("How many players are on a soccer team?",), ("A soccer team has eleven players on the field.",)),
    (("How many players are on a basketball team?",), ("A basketball team has five players on the court.",)),
    (("How many strings does a guitar have?",), ("A standard guitar has six strings.",)),
    (("How many keys does a piano have?",), ("A standard piano has 88 keys.",)),
    (("How many sides does a triangle have?",), ("A triangle has three sides.",)),
    (("How many sides does a square have?",), ("A square has four equal sides.",)),
    (("How many sides does a hexagon have?",), ("A hexagon has six sides.",)),
    (("How many sides does an octagon have?",), ("An octagon has eight sides.",)),
    (("How many letters are in the alphabet?",), ("There are 26 letters in the English alphabet.",)),
    (("How many cards are in a deck?",), ("A standard deck has 52 cards.",)),
    (("How often are the Olympics held?",), ("The Summer and Winter Olympics are each held every four years.",)),
    (("What is pi?", "What's the value of pi?"), ("Pi is about 3.14. It's the ratio of a circle's distance around to its width.",)),
    (("What is a prime number?",), ("A prime number can only be divided evenly by one and itself, like 7 or 13.",)),
    (("What is the square root of 64?",), ("The square root of 64 is 8.",)),
    (("What is the square root of 81?",), ("The square root of 81 is 9.",)),
    (("What is half of 100?",), ("Half of 100 is 50.",)),
    (("How many zeros are in a million?",), ("A million has six zeros.",)),
    (("What comes after a million?",), ("After a million comes a billion, which is a thousand millions.",)),
    (("What is a noun?",), ("A noun is a word for a person, place or thing.",)),
    (("What is a verb?",), ("A verb is an action word, like run or jump.",)),
    (("How do you spell cat?",), ("Cat is spelled C, A, T.",)),
    (("What is the opposite of yes?",), ("The opposite of yes is no.",)),
)  # fmt: skip


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def fact_rows() -> list[Row]:
    """All fact rows, generated tables first, then the free rows."""
    rows: list[Row] = []
    for country, capital in CAPITALS:
        qs = tuple(q.format(c=country) for q in CAPITAL_Q)
        rows.append((qs, tuple(a.format(c=country, k=capital) for a in CAPITAL_A)))
    for sing, plural, n in LEGS:
        qs = (f"How many legs does {sing} have?", f"How many legs do {plural} have?")
        rows.append(
            (
                qs,
                (n,)
                if n.endswith(".")
                else (f"{_cap(sing)} has {n} legs.", f"{_cap(plural)} have {n} legs."),
            )
        )
    for animal, sound in SOUNDS:
        qs = (
            f"What sound does {animal} make?",
            f"What does {animal} say?",
            f"What noise does {animal} make?",
        )
        rows.append((qs, (f"{_cap(animal)} says {sound}.",)))
    for animal, baby in BABIES:
        qs = (f"What is a baby {animal} called?", f"What do you call a baby {animal}?")
        rows.append((qs, (f"A baby {animal} is called {baby}.",)))
    for a, b in OPPOSITES:
        qs = (f"What is the opposite of {a}?", f"What's the opposite of {a}?")
        rows.append((qs, (f"The opposite of {a} is {b}.",)))
    for x, y, z in COLOR_MIX:
        qs = (f"What do you get when you mix {x} and {y}?", f"What color do {x} and {y} make?")
        rows.append((qs, (f"Mixing {x} and {y} makes {z}.", f"{_cap(x)} and {y} make {z}.")))
    rows.extend(MISC)
    return rows
