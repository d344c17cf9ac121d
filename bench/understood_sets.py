"""The booking calls of the understood bench (bench/understood.py): who calls, where they
live, when they want the technician, how they sound and the line they call on.

Two sets:

- `tuning`: 12 calls. The receptionist's authors may read them, listen to them and tune the
  policy and the vocabulary on them.
- `heldout`: 24 calls with other names, streets, voices, rates and line seeds. NEVER USED
  FOR TUNING: nobody changes the policy, the vocabulary or the recognizer settings because
  of what one of these calls did. Only its aggregate numbers and its list of field errors
  are read; a change is judged on `tuning` first and confirmed here.

About a third of each set has easy names and streets (John Miller on Elm Street), the rest
hard ones: names and streets that a recognizer trained on common English words mishears.

A caller says their own name and street as they are said, not as espeak-ng would read the
spelling: `SAY` holds a respelling that espeak-ng pronounces about right ("Caoimhe" is said
"Keeva"). The truth, and every spelled-out letter, is the written form.

Voices: over the telephone band, tiny.en writes espeak-ng's default voices with 45-70% of
the words wrong even in plain sentences ("Thursday at three in the afternoon"); its Klatt
variants with a short pause between words (`gap`, 20-40 ms) come out at about 20-35%. Most
calls use those, so that the bench measures names and streets more than espeak-ng; about a
third keep the plain voices or the harder accents (en-gb, en-gb-scotland, en-029). Chosen on
plain sentences, never on these calls.

Times are slot starts (the demo business books 2-hour slots from 7 AM), so the stored
start of a visit is the wanted time under either reading of "the booked time". The bench's
clock is Monday 30 November 2026, 10 AM, New York: "tomorrow" is Tuesday.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bench.phoneline import LineProfile, PhoneLine, draw_profile

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=NY)  # a Monday
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

LINES = ("clean", "hiss", "hiss+hum", "quiet")

# Street suffixes as a recognizer or a caller may write them -> one spelling.
SUFFIXES = {
    "st": "street",
    "str": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "dr": "drive",
    "ln": "lane",
    "blvd": "boulevard",
    "ct": "court",
    "pl": "place",
    "cir": "circle",
    "ter": "terrace",
    "terr": "terrace",
    "pkwy": "parkway",
    "hwy": "highway",
    "wy": "way",
}


@dataclass(frozen=True)
class Wanted:
    """When the caller wants the visit: what they say, and the weekday and hour it means."""

    phrase: str  # "Thursday at three in the afternoon"
    weekday: int  # 0 = Monday
    hour: int  # 24 h, a slot start

    def at(self, now: datetime = NOW) -> datetime:
        """The next such weekday after today, at the hour (the caller means the coming one)."""
        days = (self.weekday - now.weekday()) % 7 or 7
        day: date = (now + timedelta(days=days)).date()
        return datetime.combine(day, time(self.hour), tzinfo=now.tzinfo)


@dataclass(frozen=True)
class BookingCall:
    id: str
    first: str
    last: str
    number: int  # house number
    street: str  # the street's name without its suffix: "Quail Hollow"
    suffix: str  # "Road"
    wanted: Wanted
    problem: str  # the caller's first sentence
    voice: str  # espeak-ng voice (+variant)
    wpm: int
    line: str  # one of LINES
    seed: int
    easy: bool = False
    gap: int = 0  # espeak-ng's pause between words, in 10 ms: a caller speaking carefully

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def street_full(self) -> str:
        return f"{self.street} {self.suffix}"

    @property
    def address(self) -> str:
        return f"{self.number} {self.street_full}"


# How the callers pronounce the hard words (espeak-ng respellings). Spelled letters and the
# truth keep the written form.
SAY: dict[str, str] = {
    # tuning
    "Niamh": "Neeve",
    "Kowalczyk": "Koh-vahl-chick",
    "Tuolumne": "Too-all-uh-mee",
    "Deepak": "Dee-pahk",
    "Venkataraman": "Venk-ah-tah-rah-mun",
    "Schuylkill": "Skoo-kill",
    "Xochitl": "So-cheel",
    "Chautauqua": "Shuh-taw-kwuh",
    "Grzegorz": "Gzheh-gosh",
    "Szymanski": "Shi-man-ski",
    "Gloucester": "Gloster",
    "Ngozi": "N-go-zee",
    "Okonkwo": "Oh-konk-woh",
    "Ahuimanu": "Ah-hoo-ee-mah-noo",
    "Saoirse": "Seer-sha",
    "Dunleavy": "Dun-lee-vee",
    "Worcester": "Wooster",
    "Huong": "Hwung",
    "Pham": "Fahm",
    "Natchitoches": "Nack-uh-tish",
    "Anneliese": "Anna-leesa",
    "Vandenberghe": "Vanden-berg",
    "Kamehameha": "Kah-meh-hah-meh-hah",
    # heldout
    "Caoimhe": "Keeva",
    "Przemyslaw": "Psheh-mih-swahf",
    "Wozniak": "Vozh-nyak",
    "Chukwuemeka": "Chook-way-meh-kah",
    "Anjali": "Un-juh-lee",
    "Raghunathan": "Rah-goo-nah-thun",
    "Duong": "Zoong",
    "Huynh": "Win",
    "Eoghan": "Owen",
    "Callaghan": "Calla-han",
    "Tadeusz": "Tah-deh-oosh",
    "Jablonski": "Yah-blon-ski",
    "Yetunde": "Yeh-toon-day",
    "Bakare": "Bah-kah-ray",
    "Ishaan": "Ee-shahn",
    "Chaudhary": "Chow-dree",
    "Mairead": "Mah-raid",
    "Donoghue": "Dunna-hoo",
    "Zbigniew": "Zbig-nyef",
    "Kaczmarek": "Kahch-mah-rek",
    "Folasade": "Fo-lah-shah-day",
    "Ogunleye": "Oh-goon-leh-yeh",
    "Lakshmi": "Luck-shmee",
    "Subramanian": "Soob-rah-mah-nee-un",
    "Ruairi": "Roo-ree",
    "Geoghegan": "Gay-gun",
    "Phuong": "Foong",
    "Wojcik": "Voy-chick",
    "Kalanianaole": "Kah-lah-nee-ah-nah-oh-leh",
    "Wissahickon": "Wissa-hickon",
    "Tchefuncte": "Chuh-funk-tuh",
    "Puunene": "Poo-oo-neh-neh",
    "Schenectady": "Skuh-neck-tuh-dee",
    "Mamaroneck": "Muh-mare-uh-neck",
    "Poughkeepsie": "Puh-kip-see",
    "Cahuenga": "Kuh-weng-guh",
    "Tehachapi": "Tuh-hatch-uh-pee",
    "Housatonic": "Hoo-suh-tonic",
    "Acequia": "Ah-say-kee-ah",
    "Okeechobee": "Oh-kee-cho-bee",
}


def _day(name: str) -> int:
    return WEEKDAYS.index(name)


TUNING: tuple[BookingCall, ...] = (
    BookingCall(
        "t01", "David", "Clark", 57, "Lincoln", "Avenue",
        Wanted("tomorrow at nine in the morning", _day("Tuesday"), 9),
        "Hi, my kitchen sink is clogged and the water won't go down.",
        "en-us+klatt3", 175, "clean", 1001, easy=True, gap=2,
    ),
    BookingCall(
        "t02", "Susan", "Wright", 812, "Pine", "Street",
        Wanted("Wednesday at one in the afternoon", _day("Wednesday"), 13),
        "Hello, my water heater is leaking and I need someone to fix it.",
        "en-gb-x-rp+klatt3", 155, "hiss", 1002, easy=True, gap=3,
    ),
    BookingCall(
        "t03", "Robert", "Hayes", 3301, "Meadow", "Lane",
        Wanted("Friday at eleven in the morning", _day("Friday"), 11),
        "Our air conditioner stopped working yesterday, can you send a technician?",
        "en-us+klatt2", 145, "hiss+hum", 1003, easy=True, gap=3,
    ),
    BookingCall(
        "t04", "Karen", "Lopez", 46, "Sunset", "Boulevard",
        Wanted("Thursday at three in the afternoon", _day("Thursday"), 15),
        "I'd like to book a tune up for my furnace before the winter.",
        "en-029+klatt", 150, "quiet", 1004, easy=True, gap=2,
    ),
    BookingCall(
        "t05", "Niamh", "Kowalczyk", 1907, "Tuolumne", "Street",
        Wanted("Wednesday at nine in the morning", _day("Wednesday"), 9),
        "Hi, the toilet upstairs is clogged and I need a plumber to come out.",
        "en-gb-scotland+klatt", 160, "clean", 1005, gap=3,
    ),
    BookingCall(
        "t06", "Deepak", "Venkataraman", 640, "Schuylkill", "Avenue",
        Wanted("Friday at one in the afternoon", _day("Friday"), 13),
        "My heat pump is making a grinding noise, I'd like a repair.",
        "en-us-nyc+klatt", 165, "hiss", 1006, gap=3,
    ),
    BookingCall(
        "t07", "Xochitl", "Hernandez", 2218, "Chautauqua", "Boulevard",
        Wanted("Thursday at eleven in the morning", _day("Thursday"), 11),
        "Hello, the faucet in my bathroom keeps leaking, can someone fix it?",
        "en-us+klatt5", 150, "hiss+hum", 1007, gap=2,
    ),
    BookingCall(
        "t08", "Grzegorz", "Szymanski", 75, "Gloucester", "Road",
        Wanted("Saturday at nine in the morning", _day("Saturday"), 9),
        "My boiler isn't working properly and I need a technician.",
        "en-us+m3", 155, "quiet", 1008, gap=4,
    ),
    BookingCall(
        "t09", "Ngozi", "Okonkwo", 418, "Ahuimanu", "Road",
        Wanted("tomorrow at three in the afternoon", _day("Tuesday"), 15),
        "Hi, the air conditioning in my house isn't cooling at all.",
        "en-us+klatt", 150, "clean", 1009, gap=3,
    ),
    BookingCall(
        "t10", "Saoirse", "Dunleavy", 1260, "Worcester", "Lane",
        Wanted("Thursday at five in the afternoon", _day("Thursday"), 17),
        "My shower drain is backed up, I'd like to book a visit.",
        "en-us+klatt4", 180, "hiss", 1010, gap=2,
    ),
    BookingCall(
        "t11", "Huong", "Pham", 93, "Natchitoches", "Court",
        Wanted("Wednesday at eleven in the morning", _day("Wednesday"), 11),
        "I need to schedule a maintenance visit for my furnace.",
        "en-us+f3", 150, "hiss+hum", 1011, gap=4,
    ),
    BookingCall(
        "t12", "Anneliese", "Vandenberghe", 3310, "Kamehameha", "Way",
        Wanted("Friday at seven in the morning", _day("Friday"), 7),
        "Hello, there's a leak under my kitchen sink, can you send someone out?",
        "en-gb+klatt2", 150, "quiet", 1012, gap=3,
    ),
)  # fmt: skip

# NEVER USED FOR TUNING (see the module docstring).
HELDOUT: tuple[BookingCall, ...] = (
    BookingCall(
        "h01", "John", "Miller", 1420, "Elm", "Street",
        Wanted("Thursday at nine in the morning", _day("Thursday"), 9),
        "Hi, my bathroom sink is clogged, can you send someone out?",
        "en-us-nyc+klatt3", 160, "clean", 2001, easy=True, gap=2,
    ),
    BookingCall(
        "h02", "Caoimhe", "Fitzgerald", 744, "Kalanianaole", "Highway",
        Wanted("Wednesday at three in the afternoon", _day("Wednesday"), 15),
        "Hello, my water heater is leaking and I need a repair.",
        "en-gb-scotland", 155, "hiss", 2002, gap=0,
    ),
    BookingCall(
        "h03", "Przemyslaw", "Wozniak", 2905, "Wissahickon", "Avenue",
        Wanted("Friday at nine in the morning", _day("Friday"), 9),
        "Our furnace keeps shutting off, I need a technician to look at it.",
        "en-us+klatt6", 175, "hiss+hum", 2003, gap=3,
    ),
    BookingCall(
        "h04", "Linda", "Harris", 88, "Cedar", "Court",
        Wanted("tomorrow at one in the afternoon", _day("Tuesday"), 13),
        "My air conditioner is blowing warm air, I'd like to book a repair.",
        "en-gb-x-rp+klatt", 165, "quiet", 2004, easy=True, gap=2,
    ),
    BookingCall(
        "h05", "Chukwuemeka", "Obi", 315, "Tchefuncte", "Drive",
        Wanted("Thursday at one in the afternoon", _day("Thursday"), 13),
        "Hi, my kitchen drain is really slow, can someone come out?",
        "en-029+klatt3", 150, "clean", 2005, gap=3,
    ),
    BookingCall(
        "h06", "Anjali", "Raghunathan", 1618, "Maple", "Drive",
        Wanted("Saturday at eleven in the morning", _day("Saturday"), 11),
        "Hello, I'd like to schedule a maintenance visit for my air conditioning.",
        "en-us-nyc+klatt2", 170, "hiss", 2006, gap=3,
    ),
    BookingCall(
        "h07", "James", "Walker", 305, "Hillside", "Drive",
        Wanted("Wednesday at seven in the morning", _day("Wednesday"), 7),
        "My toilet is clogged and it won't flush, I need a plumber.",
        "en-gb-x-gbcwmd+klatt", 160, "hiss+hum", 2007, easy=True, gap=2,
    ),
    BookingCall(
        "h08", "Duong", "Huynh", 52, "Puunene", "Avenue",
        Wanted("Friday at three in the afternoon", _day("Friday"), 15),
        "Hi, the pipe under my bathroom sink is leaking.",
        "en-us+f2", 185, "quiet", 2008, gap=3,
    ),
    BookingCall(
        "h09", "Eoghan", "Callaghan", 1133, "Schenectady", "Street",
        Wanted("tomorrow at eleven in the morning", _day("Tuesday"), 11),
        "My boiler is making a banging noise, I'd like someone to repair it.",
        "en-gb-scotland+klatt3", 150, "clean", 2009, gap=3,
    ),
    BookingCall(
        "h10", "Patricia", "Moore", 2710, "Lakeview", "Road",
        Wanted("Thursday at five in the afternoon", _day("Thursday"), 17),
        "Hello, I need to book a tune up for my heating system.",
        "en-us-nyc+klatt4", 155, "hiss", 2010, easy=True, gap=2,
    ),
    BookingCall(
        "h11", "Tadeusz", "Jablonski", 476, "Mamaroneck", "Road",
        Wanted("Wednesday at nine in the morning", _day("Wednesday"), 9),
        "Hi, the shower drain is backed up again, can you send a technician?",
        "en-029", 180, "hiss+hum", 2011, gap=1,
    ),
    BookingCall(
        "h12", "Yetunde", "Bakare", 909, "Poughkeepsie", "Lane",
        Wanted("Saturday at one in the afternoon", _day("Saturday"), 13),
        "My air conditioning stopped cooling last night, I need a repair.",
        "en-gb-x-rp+klatt5", 165, "quiet", 2012, gap=3,
    ),
    BookingCall(
        "h13", "Michael", "Brown", 19, "Chestnut", "Lane",
        Wanted("Friday at eleven in the morning", _day("Friday"), 11),
        "Hello, my kitchen faucet is leaking, can someone fix it?",
        "en-us-nyc+klatt6", 170, "clean", 2013, easy=True, gap=2,
    ),
    BookingCall(
        "h14", "Ishaan", "Chaudhary", 3025, "Cahuenga", "Boulevard",
        Wanted("Thursday at seven in the morning", _day("Thursday"), 7),
        "Hi, our heat pump isn't heating the house, I'd like a technician.",
        "en-us+m7", 160, "hiss", 2014, gap=3,
    ),
    BookingCall(
        "h15", "Mairead", "Donoghue", 67, "Tehachapi", "Court",
        Wanted("tomorrow at five in the afternoon", _day("Tuesday"), 17),
        "My water heater stopped working, I need someone to repair it.",
        "en-gb", 145, "hiss+hum", 2015, gap=1,
    ),
    BookingCall(
        "h16", "Jennifer", "Scott", 640, "Park", "Avenue",
        Wanted("Wednesday at one in the afternoon", _day("Wednesday"), 13),
        "Hello, my bathtub drain is clogged, can you send a plumber?",
        "en-029+klatt2", 175, "quiet", 2016, easy=True, gap=2,
    ),
    BookingCall(
        "h17", "Zbigniew", "Kaczmarek", 1504, "Housatonic", "Drive",
        Wanted("Friday at five in the afternoon", _day("Friday"), 17),
        "Hi, my furnace is blowing cold air, I'd like to book a repair.",
        "en-gb-x-rp+klatt2", 155, "clean", 2017, gap=3,
    ),
    BookingCall(
        "h18", "Folasade", "Ogunleye", 238, "Birchwood", "Terrace",
        Wanted("Thursday at eleven in the morning", _day("Thursday"), 11),
        "Hello, the toilet in our basement keeps clogging, can someone come out?",
        "en-us+f4", 165, "hiss", 2018, gap=3,
    ),
    BookingCall(
        "h19", "William", "Turner", 1135, "Willow", "Way",
        Wanted("Saturday at three in the afternoon", _day("Saturday"), 15),
        "My air conditioner is leaking water, I need a technician.",
        "en-gb-x-gbclan+klatt", 185, "hiss+hum", 2019, easy=True, gap=2,
    ),
    BookingCall(
        "h20", "Lakshmi", "Subramanian", 4120, "Acequia Madre", "Road",
        Wanted("Wednesday at five in the afternoon", _day("Wednesday"), 17),
        "Hi, I'd like to schedule a maintenance visit for my furnace.",
        "en-us", 150, "quiet", 2020, gap=2,
    ),
    BookingCall(
        "h21", "Ruairi", "Geoghegan", 81, "Okeechobee", "Boulevard",
        Wanted("tomorrow at seven in the morning", _day("Tuesday"), 7),
        "Hello, my kitchen sink is backed up and smells bad.",
        "en-gb-x-rp+klatt4", 170, "clean", 2021, gap=3,
    ),
    BookingCall(
        "h22", "Barbara", "King", 506, "Spring", "Street",
        Wanted("Friday at one in the afternoon", _day("Friday"), 13),
        "Hi, the shower faucet is dripping and won't turn off all the way, can you fix it?",
        "en-us-nyc", 145, "hiss", 2022, easy=True, gap=3,
    ),
    BookingCall(
        "h23", "Phuong", "Vo", 1777, "Menominee", "Street",
        Wanted("Thursday at three in the afternoon", _day("Thursday"), 15),
        "My heating isn't working right, I need a technician to come out.",
        "en-029+klatt5", 160, "hiss+hum", 2023, gap=2,
    ),
    BookingCall(
        "h24", "Thaddeus", "Wojcik", 2236, "Oak Hollow", "Circle",
        Wanted("Wednesday at eleven in the morning", _day("Wednesday"), 11),
        "Hello, my water heater is leaking, I'd like to book a repair.",
        "en-us+m2", 180, "quiet", 2024, gap=3,
    ),
)  # fmt: skip

SETS: dict[str, tuple[BookingCall, ...]] = {"tuning": TUNING, "heldout": HELDOUT}

# The other streets of the business's area: what a business would list beside the set's.
LOCAL_STREETS = (
    "Birch Avenue",
    "Main Street",
    "Washington Street",
    "Church Street",
    "Franklin Avenue",
    "Highland Avenue",
    "Riverside Drive",
    "Forest Road",
    "Prospect Street",
    "Summer Street",
    "Orchard Lane",
    "Mill Road",
    "Academy Street",
    "Brookside Drive",
    "Fairview Avenue",
    "Grove Street",
    "Harbor View Road",
    "Jefferson Avenue",
    "Laurel Court",
    "Magnolia Drive",
    "Madison Street",
    "North Shore Road",
    "Overlook Terrace",
    "Pleasant Street",
    "Ridgewood Road",
    "School Street",
    "Sycamore Lane",
    "Valley View Drive",
    "Walnut Street",
    "Winthrop Place",
)


def line_profile(call: BookingCall) -> LineProfile:
    """The call's line, from its seed and condition (bench/phoneline.py draws the rest):
    clean = only the telephone band and mu-law (no hiss to speak of, no room); hiss = a
    drawn line without hum; hiss+hum = a drawn line that hums; quiet = a drawn line with
    the caller 20 dB down (far from the mouthpiece) on the quieter half of the hiss range."""
    match call.line:
        case "clean":
            return LineProfile(call.seed, gain_db=0.0, noise_dbfs=-75.0, rt60_s=0.15, wet=0.0)
        case "hiss":
            return draw_profile(call.seed, hum=False)
        case "hiss+hum":
            p = draw_profile(call.seed, hum=True)
            return (
                p if p.hum_dbfs is not None else dataclasses.replace(p, hum_dbfs=p.noise_dbfs - 15)
            )
        case "quiet":
            p = draw_profile(call.seed, hum=False)
            return dataclasses.replace(p, gain_db=-20.0, noise_dbfs=min(p.noise_dbfs, -48.0))
    raise ValueError(f"unknown line condition {call.line!r}")


def phone_line(call: BookingCall) -> PhoneLine:
    return PhoneLine(line_profile(call))
