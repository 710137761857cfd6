"""Child-directed Korean: a lexicon of about 300 everyday words and sentence patterns.

Sentences are 2-5 words (about 1.5-3 s spoken), the kind of thing said to and by 3-10 year olds:
requests (`엄마 우유 주세요`), descriptions (`강아지가 귀여워요`), plans (`우리 같이 놀자`),
questions (`고양이는 어디 있어요`). Particles follow the noun's final consonant (이/가, 을/를,
은/는, 이랑/랑, 에서).
"""

from __future__ import annotations

import functools

import numpy as np

ANIMALS = (
    "강아지 고양이 토끼 곰 사자 호랑이 코끼리 기린 원숭이 돼지 오리 병아리 물고기 거북이 개구리 "
    "나비 참새 펭귄 다람쥐 여우 늑대 하마 악어 공룡 부엉이 고래 상어 문어 달팽이 사슴"
).split()
FOODS = (
    "사과 바나나 포도 딸기 수박 귤 복숭아 우유 빵 밥 김치 과자 사탕 초콜릿 아이스크림 주스 물 "
    "계란 떡 국수 고구마 감자 당근 치즈 피자 케이크 요구르트 토마토 오이 만두"
).split()
THINGS = (
    "공 인형 자동차 기차 비행기 블록 풍선 그림책 책 연필 크레파스 가방 모자 신발 양말 옷 우산 "
    "장난감 로봇 퍼즐 색종이 가위 컵 숟가락 젓가락 의자 침대 이불 시계 자전거"
).split()
PEOPLE = "엄마 아빠 할머니 할아버지 언니 오빠 누나 형 동생 아기 친구 선생님 이모 삼촌".split()
BODY = "손 발 눈 코 입 귀 머리 다리 팔 얼굴 배꼽 이빨".split()
PLACES = "집 학교 유치원 놀이터 공원 바다 산 시장 병원 마트 도서관 동물원 방 부엌 수영장".split()
NATURE = "해 달 별 비 바람 구름 꽃 나무 하늘 무지개 눈사람 모래".split()
TIMES = "오늘 내일 아침 저녁 지금 이따가".split()
WEATHER = "비 눈 바람".split()
COLORS = "빨간색 파란색 노란색 초록색 하얀색 까만색 분홍색 보라색".split()
COUNTS = "하나 둘 셋 넷 다섯".split()
# Transitive verbs take an object with 을/를; (polite, let's-form).
TRANSITIVE = (
    ("먹어요", "먹자"),
    ("마셔요", "마시자"),
    ("봐요", "보자"),
    ("읽어요", "읽자"),
    ("그려요", "그리자"),
    ("만들어요", "만들자"),
    ("씻어요", "씻자"),
    ("찾아요", "찾자"),
    ("좋아해요", "좋아하자"),
    ("던져요", "던지자"),
    ("잡아요", "잡자"),
    ("열어요", "열자"),
    ("닫아요", "닫자"),
    ("가져와요", "가져오자"),
    ("타요", "타자"),
    ("입어요", "입자"),
    ("신어요", "신자"),
    ("안아요", "안자"),
    ("치워요", "치우자"),
    ("나눠요", "나누자"),
)
INTRANSITIVE = (
    ("놀아요", "놀자"),
    ("자요", "자자"),
    ("가요", "가자"),
    ("와요", "오자"),
    ("뛰어요", "뛰자"),
    ("걸어요", "걷자"),
    ("앉아요", "앉자"),
    ("일어나요", "일어나자"),
    ("웃어요", "웃자"),
    ("노래해요", "노래하자"),
    ("춤춰요", "춤추자"),
    ("기다려요", "기다리자"),
    ("쉬어요", "쉬자"),
    ("숨어요", "숨자"),
    ("공부해요", "공부하자"),
)
ADJECTIVES = (
    "좋아요 예뻐요 귀여워요 커요 작아요 맛있어요 뜨거워요 차가워요 무서워요 재미있어요 빨라요 느려요 "
    "높아요 길어요 많아요 부드러워요 깨끗해요 더러워요 달아요 시원해요"
).split()
FEELINGS = "배고파요 졸려요 아파요 신나요 심심해요 행복해요 추워요 더워요".split()
ATTRIBUTES = "큰 작은 예쁜 귀여운 맛있는 빨간 파란 노란 하얀 새 무서운 재미있는".split()
ADVERBS = "정말 아주 빨리 천천히 같이 또 많이 조금 이제 먼저 다시 혼자".split()

NOUNS = ANIMALS + FOODS + THINGS + NATURE
WORDS = sorted(
    set(NOUNS + PEOPLE + BODY + PLACES + TIMES + COLORS + COUNTS + ADJECTIVES + FEELINGS + ATTRIBUTES + ADVERBS)
    | {form for pair in TRANSITIVE + INTRANSITIVE for form in pair}
)


def has_final_consonant(word: str) -> bool:
    """True when the last Hangul syllable ends in a consonant (batchim)."""
    code = ord(word[-1]) - 0xAC00
    return 0 <= code < 11172 and code % 28 != 0


def particle(word: str, with_final: str, without_final: str) -> str:
    return word + (with_final if has_final_consonant(word) else without_final)


def _pick(rng: np.random.Generator, items: tuple | list):
    return items[int(rng.integers(len(items)))]


def _patterns(rng: np.random.Generator) -> list[list[str]]:
    """One candidate sentence per pattern, built with this RNG; the caller picks one."""
    pick = functools.partial(_pick, rng)
    noun, food, thing, person, place = pick(NOUNS), pick(FOODS), pick(THINGS), pick(PEOPLE), pick(PLACES)
    polite, lets = pick(TRANSITIVE)
    walk, lets_walk = pick(INTRANSITIVE)
    return [
        [particle(pick(ANIMALS), "이", "가"), pick(ADJECTIVES)],
        [particle(food, "을", "를"), polite],
        [person, food, "주세요"],
        [place + "에", pick(("가요", "가자", "갈래요"))],
        [pick(ATTRIBUTES), particle(thing, "이", "가"), pick(("있어요", "없어요"))],
        [particle(noun, "은", "는"), pick(COLORS) + "이에요"],
        ["우리", "같이", lets_walk],
        [particle(noun, "이", "가"), pick(COUNTS), "있어요"],
        [particle(pick(ANIMALS), "은", "는"), "어디", "있어요"],
        [pick(ADVERBS), walk],
        [particle(person, "이랑", "랑"), place + "에서", walk],
        ["나는", particle(noun, "이", "가"), "좋아요"],
        [particle(thing, "을", "를"), pick(ADVERBS), polite],
        [particle(pick(TIMES), "은", "는"), particle(pick(WEATHER), "이", "가"), "와요"],
        [person, pick(FEELINGS)],
        [pick(("이거", "저거", "그거")), pick(("뭐야", "뭐예요"))],
        [particle(pick(BODY), "이", "가"), "아파요"],
        [person, particle(thing, "을", "를"), lets],
        [pick(ATTRIBUTES), particle(pick(ANIMALS), "이", "가"), walk],
        ["안녕", person],
    ]


def make_sentence(rng: np.random.Generator) -> list[str]:
    """A random child-directed sentence as a list of words."""
    patterns = _patterns(rng)
    return patterns[int(rng.integers(len(patterns)))]
