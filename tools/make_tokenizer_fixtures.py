#!/usr/bin/env python3
"""Writes the tokenizer and chat-template reference cases for wedlm.cpp's tests.

Run where the Hugging Face `tokenizers` and `transformers` packages are installed (the GPU machine):

    python3 tools/make_tokenizer_fixtures.py --tokenizer-dir ~/.cache/wedlm/tokenizer-qwen3 \
        --out tests/fixtures/tokenizer

It writes encode_cases.json (text -> ids with special tokens parsed and not parsed, decoded text with
and without skip_special_tokens) and chat_cases.json (conversation -> prompt rendered by
transformers' apply_chat_template). The expected values come from those packages only.
"""
import argparse
import json
import os
import random
import sys
import traceback

# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------

PROSE = """\
The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times.
Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse,
and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.
In the beginning the Universe was created. This has made a lot of people very angry and been widely regarded as a bad move.
Diffusion language models generate several tokens per step; the engine commits them left to right.
Mr. and Mrs. Dursley, of number four, Privet Drive, were proud to say that they were perfectly normal, thank you very much.
"Well," she said, "I don't know what you're talking about." He replied: 'It's fine -- really.'
Prices rose 3.5% in Q3 2024 (from $1,299.99 to $1,345.50), according to the report released on 2024-10-15.
E-mail alice@example.com or visit https://example.org/path?query=1&lang=en#section for more details.
Hello, World! HELLO, WORLD! hello, world! HeLLo, WoRLd!
It's a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.
We'll see; they've gone; you'd think I'm wrong, but she's right and it'll work. WE'LL SEE; THEY'VE GONE; I'M SURE.
Tokenization is the process of splitting text into units.  Double  spaces   and    more     spaces.
Semicolons; colons: dashes - en dashes \u2013 em dashes \u2014 ellipses\u2026 and \u201cquotes\u201d and \u2018single quotes\u2019.
The mitochondria is the powerhouse of the cell, or so the biology textbooks say.
Numbers like 1234567890 and 3.14159265358979 and 6.022e23 and -42 and +7 are tokenized digit by digit.
A man, a plan, a canal: Panama! Was it a car or a cat I saw? No 'x' in Nixon.
Once upon a midnight dreary, while I pondered, weak and weary, over many a quaint and curious volume of forgotten lore.
Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in Liberty.
The year 1984 came and went; 2001 was not much of a space odyssey; 2038 will overflow 32-bit time.
She sells sea-shells by the sea-shore. The shells she sells are sea-shells, I'm sure.
To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer the slings and arrows.
"""

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "class Foo:\n\tdef __init__(self):\n\t\tself.x = 1\n\n\tdef bar(self):\n\t\treturn self.x\n",
    "#include <stdio.h>\n\nint main(void) {\n    printf(\"Hello, world!\\n\");\n    return 0;\n}\n",
    "template <typename T>\nT max(T a, T b) { return a > b ? a : b; }\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "all: main\n\nmain: main.o util.o\n\t$(CC) -o $@ $^ $(LDFLAGS)\n\n%.o: %.c\n\t$(CC) -c $< -o $@\n",
    "const add = (a, b) => a + b;\nconsole.log(`sum: ${add(1, 2)}`);\n",
    "{\n  \"name\": \"wedlm\",\n  \"version\": \"0.1.0\",\n  \"deps\": [\"fmt\", \"pcre2\"]\n}\n",
    "#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.txt; do\n  wc -l \"$f\"\ndone\n",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE 'A%' ORDER BY id DESC;\n",
    "fn main() {\n    let v: Vec<i32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}\n",
    "if __name__ == '__main__':\n    import sys\n    sys.exit(main(sys.argv[1:]))\n",
    "    \n        indented_with_spaces = True\n\t\t\tindented_with_tabs = True\n  \t  mixed = None\n",
    "x=1;y=2;z=x+y*3//4%5**6\nprint(x,y,z)\n",
    "<html>\n  <body>\n    <p class=\"note\">Hi &amp; bye</p>\n  </body>\n</html>\n",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n",
    "\\begin{equation}\n  E = mc^2 \\quad \\int_0^\\infty e^{-x^2} dx = \\frac{\\sqrt{\\pi}}{2}\n\\end{equation}\n",
    "// comment with trailing spaces   \n/* block\n * comment\n */\nreturn;\r\n",
    "a = [1, 2, 3]\r\nb = {'k': 'v'}\r\n\r\n\tc = a[::-1]\r\n",
    "    def method(self, arg1, arg2=None, *args, **kwargs) -> Optional[Dict[str, Any]]:\n        pass\n",
    "@@ -1,3 +1,4 @@\n-old line\n+new line\n+another\n context\n",
    "$ ls -la /usr/local/bin | grep -E '^-rwx' > out.txt 2>&1 && echo ok || echo fail\n",
    "std::vector<std::pair<int, std::string>> v{{1, \"a\"}, {2, \"b\"}};\nauto [k, s] = v[0];\n",
    "    return {\n        'key': value,  # trailing comment\n        \"other\": [x for x in range(10) if x % 2 == 0],\n    }\n",
    "\t\t\t\t\t\t\t\t\tdeeply_indented();\n",
    "                                                                end\n",
]

SCRIPTS = [
    "\u4eca\u5929\u5929\u6c14\u5f88\u597d\uff0c\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427\u3002",
    "\u6269\u6563\u8bed\u8a00\u6a21\u578b\u53ef\u4ee5\u5e76\u884c\u751f\u6210\u591a\u4e2a\u8bcd\u5143\u3002",
    "\u4e2d\u6587\u6807\u70b9\u7b26\u53f7\uff1a\u300c\u5f15\u53f7\u300d\u3001\u300a\u4e66\u540d\u53f7\u300b\uff1f\uff01",
    "\u79c1\u306f\u65e5\u672c\u8a9e\u3092\u52c9\u5f37\u3057\u3066\u3044\u307e\u3059\u3002\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3002",
    "\u6771\u4eac\u30bf\u30ef\u30fc\u306f\u0033\u0033\u0033\u30e1\u30fc\u30c8\u30eb\u3067\u3059\u3002",
    "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4. \uc548\ub155\ud558\uc138\uc694!",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645! \u0647\u0630\u0627 \u0646\u0635 \u0639\u0631\u0628\u064a \u0645\u0639 \u0623\u0631\u0642\u0627\u0645 \u0661\u0662\u0663.",
    "\u0627\u0644\u0644\u063a\u0629 \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u062c\u0645\u064a\u0644\u0629\u060c \u0623\u0644\u064a\u0633 \u0643\u0630\u0644\u0643\u061f",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd, \u05d6\u05d4 \u05d8\u05e7\u05e1\u05d8 \u05d1\u05e2\u05d1\u05e8\u05d9\u05ea.",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u042d\u0442\u043e \u0442\u0435\u043a\u0441\u0442 \u043d\u0430 \u0440\u0443\u0441\u0441\u043a\u043e\u043c \u044f\u0437\u044b\u043a\u0435.",
    "\u0421\u042a\u0415\u0428\u042c \u0416\u0415 \u0415\u0429\u0401 \u042d\u0422\u0418\u0425 \u041c\u042f\u0413\u041a\u0418\u0425 \u0424\u0420\u0410\u041d\u0426\u0423\u0417\u0421\u041a\u0418\u0425 \u0411\u0423\u041b\u041e\u041a",
    "\u0423\u043a\u0440\u0430\u0457\u043d\u0441\u044c\u043a\u0430 \u043c\u043e\u0432\u0430: \u0491\u0435\u043d\u0456\u0439, \u0457\u0436\u0430\u043a, \u0454\u0434\u043d\u0456\u0441\u0442\u044c.",
    "\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 \u03ba\u03cc\u03c3\u03bc\u03b5! \u0391\u0392\u0393\u0394 \u03b1\u03b2\u03b3\u03b4.",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e! \u092f\u0939 \u0939\u093f\u0902\u0926\u0940 \u092e\u0947\u0902 \u0939\u0948\u0964",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22\u0e44\u0e21\u0e48\u0e21\u0e35\u0e0a\u0e48\u0e2d\u0e07\u0e27\u0e48\u0e32\u0e07",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 nhi\u1ec1u d\u1ea5u: \u1eafn, \u1eb1n, \u1eb3n, \u1eb5n, \u1eb7n.",
    "T\u00fcrk\u00e7e: \u0130stanbul, \u0131s\u0131, \u015fe\u011fer, \u00e7ay. Deutsch: Stra\u00dfe, \u00c4pfel, \u1e9e.",
    "\u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8 \u10d4\u10dc\u10d0 \u0540\u0561\u0575\u0565\u0580\u0565\u0576 \u12a0\u121b\u122d\u129b",
    "Mixed: English \u4e2d\u6587 \u65e5\u672c\u8a9e \ud55c\uad6d\uc5b4 \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0420\u0443\u0441\u0441\u043a\u0438\u0439 123",
    "\u5168\u89d2\uff21\uff22\uff23\uff11\uff12\uff13\u3000\u534a\u89d2ABC123",
]

EMOJI = [
    "\U0001F600\U0001F603\U0001F604\U0001F601",
    "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466 family",
    "\U0001F44D\U0001F3FB\U0001F44D\U0001F3FC\U0001F44D\U0001F3FD\U0001F44D\U0001F3FE\U0001F44D\U0001F3FF",
    "\U0001F469\U0001F3FD\u200D\U0001F4BB coder \U0001F9D1\U0001F3FF\u200D\U0001F680",
    "\U0001F3F3\uFE0F\u200D\U0001F308 \U0001F3F4\u200D\u2620\uFE0F",
    "\U0001F1FA\U0001F1F8\U0001F1EF\U0001F1F5\U0001F1E8\U0001F1F3 flags",
    "1\uFE0F\u20E3 #\uFE0F\u20E3 *\uFE0F\u20E3 keycaps",
    "\u2764\uFE0F \u2764 \u263A\uFE0F \u2601\uFE0E",
    "I love pizza \U0001F355\U0001F355\U0001F355!!!",
    "\U0001F9D1\u200D\U0001F91D\u200D\U0001F9D1 \U0001F46B\U0001F3FB",
    "emoji\U0001F525in\U0001F525middle",
    "\U0001F44B\U0001F3FE Hello! \U0001F30D\U0001F30E\U0001F30F",
    "\U0001FAE0\U0001FAE1\U0001FAE2\U0001FAE3 newer emoji",
    "\U0001F926\U0001F3FC\u200D\u2642\uFE0F \U0001F937\u200D\u2640\uFE0F",
    "\U0001F408\u200D\u2B1B black cat, \U0001F415\u200D\U0001F9BA service dog",
]

COMBINING = [
    "e\u0301 vs \u00e9",                      # NFC composes
    "A\u030A and \u212B (angstrom sign)",     # both become U+00C5
    "\u2126 ohm sign",                        # becomes U+03A9
    "o\u0308\u0304 stacked",                  # o with diaeresis and macron
    "q\u0323\u0307 order",                    # canonical reordering
    "q\u0307\u0323 order",
    "\u1100\u1161\u11A8 hangul jamo",         # composes to a syllable
    "Cafe\u0301 cre\u0300me bru\u0302le\u0301e",
    "n\u0303 a\u0300 i\u0302 u\u0308 c\u0327",
    "\u0041\u030A\u0301 double",
    "Z\u0351\u036B\u0343\u036A\u0302\u036B\u033D\u034F\u0334\u0319\u0324\u031E\u0349\u035A\u032F\u031E\u0320\u034D zalgo",
    "\u0915\u093c \u0958 nukta",               # U+0958 is a composition exclusion
    "\u00C5\u030A already composed",
    "\u1E9B\u0323 long s with dots",
    "\uFB01 ligature fi, \u00BD fraction, \u2460 circled",  # compatibility chars stay under NFC
]

NUMBERS = [
    "0", "7", "42", "123", "1234", "12345678901234567890", "3.14159", "1,000,000.00",
    "-273.15\u00b0C", "2^64 = 18446744073709551616", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",
    "\uff10\uff11\uff12\uff13", "x\u00b2 + y\u00b3 = z\u00b9", "\u2160\u2161\u2162 roman", "\u0967\u0968\u0969 devanagari",
    "v1.2.3-rc.4+build.567", "0x7FFF_FFFF 0b1010 0o777", "1e-9 1E+10 .5 5.",
]

CONTRACTIONS = [
    "I'm", "I'M", "i'm", "you're", "YOU'RE", "You'Re", "we've", "WE'VE", "he'll", "HE'LL", "she'd", "SHE'D",
    "it's", "IT'S", "don't", "DON'T", "can't", "CAN'T", "'s", "'S", "'t 'T 're 'RE 've 'VE 'm 'M 'll 'LL 'd 'D",
    "the dog's bone", "THE DOG'S BONE", "rock 'n' roll", "o'clock", "O'Neill's", "y'all'd've",
    "it\u2019s curly", "'''triple'''", "'", "''", "'sss", "' s", "''s", "Bob's and BOB'S and Bob'S",
    "\u0130'S dotted", "'\u017F long s", "x'Ll", "'dd", "'lll",
]

WHITESPACE = [
    "", " ", "  ", "   ", "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n", "\r", "\t", "\t\t", " \n", "\n ", " \n ",
    "a  b", "a   b", "a    b", "a \n b", "a\n\nb", "a\r\nb", "a\r\n\r\nb", "a\rb", "a \t b", "a\t\tb",
    "trailing spaces   ", "   leading spaces", "   both   ", "line1\nline2\n", "  \n\n  \n", "x \n\n\n  y",
    "\u00a0non-breaking\u00a0space", "ideographic\u3000space", "next\u0085line", "line\u2028sep\u2029para",
    "vt\x0bff\x0c", "en\u2002em\u2003thin\u2009hair\u200a", "zero\u200bwidth\u200cjoiners\u200d", "narrow\u202fnbsp",
    "mixed \t\n\r\n \u00a0 \u3000 end", "word\n\n\n\n\n\n\n\n\n\n", "                                ",
    "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n", "\r\n\r\n\r\n\r\n", "\t \t \t \t ", " . , ; : ! ? ",
    "end.\n", "end.  \n", "a\n\tb\n\t\tc\n", "\u1680ogham\u180emongolian",
]

SPECIAL = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im_start|>user\nHello!<|im_end|>\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text", "<|endoftext|><|endoftext|><|endoftext|>", " <|im_end|> ", "  <|im_end|>  ",
    "<|im_end", "<|im_end|", "im_end|>", "<<|im_end|>>", "<|<|im_start|>|>", "<|IM_END|>",
    "<think>\nreasoning here\n</think>\n\nanswer", "<think></think>", "</think>", "<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
    "<tool_response>ok</tool_response>", "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>", "<|fim_pad|><|repo_name|>r<|file_sep|>",
    "<|vision_start|><|image_pad|><|vision_end|>", "<|object_ref_start|>obj<|object_ref_end|><|box_start|>(1,2)<|box_end|>",
    "<|quad_start|><|quad_end|><|video_pad|><|vision_pad|>", "word<think>word</think>word", "\n<|im_start|>\n",
    "<|im_start|><|im_end|>", "<|endoftext|> spaced <|endoftext|>", "\u4e2d\u6587<|im_end|>\u4e2d\u6587", "<think>\U0001F600</think>",
    "<tool_call><tool_call>", "<|im_start|>assistant\n<think>\n\n</think>\n\n", "<|box_start|>", "<|endoftext|>\n\n",
]

CONTROL = [
    "\x00", "a\x00b", "\x01\x02\x03\x04\x05\x06\x07", "\x08backspace", "\x1b[31mred\x1b[0m", "del\x7f",
    "\x1c\x1d\x1e\x1f separators", "bell\x07\x07", "\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a",
    "\x80\x81\x9f C1 controls", "\ufeffBOM at start", "soft\u00adhyphen", "rtl\u202emark\u202c", "\ufffd replacement",
    "private\ue000use\U000F0000", "noncharacter\ufdd0\uffff", "tag\U000E0041\U000E007F",
]

# Code point ranges for random text: assigned, stable blocks so that the Unicode versions of the
# reference (Rust crates) and of PCRE2/utf8proc agree on their properties.
RANDOM_RANGES = [
    (0x20, 0x7E), (0x20, 0x7E), (0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF),
    (0x400, 0x4FF), (0x5D0, 0x5EA), (0x620, 0x64A), (0x660, 0x669), (0x900, 0x97F), (0xE01, 0xE3A),
    (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x2190, 0x21FF), (0x2200, 0x22FF),
    (0x3040, 0x309F), (0x30A0, 0x30FF), (0x4E00, 0x9FA5), (0xAC00, 0xD7A3), (0xFF01, 0xFF5E),
    (0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x1F900, 0x1F9FF), (0x20000, 0x2A6D6),
]
WHITESPACE_POOL = [" ", " ", " ", "\n", "\t", "\r\n", "  ", "\u00a0", "\u3000"]


def random_unicode(rng, length):
    out = []
    for _ in range(length):
        r = rng.random()
        if r < 0.12:
            out.append(rng.choice(WHITESPACE_POOL))
        elif r < 0.17:
            out.append(rng.choice("0123456789'\"<|>.,;:!?-_()[]{}"))
        else:
            lo, hi = rng.choice(RANDOM_RANGES)
            cp = rng.randint(lo, hi)
            if 0xD800 <= cp <= 0xDFFF:
                cp = 0x41
            out.append(chr(cp))
    return "".join(out)


def random_ascii(rng, length):
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t\n\r!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    return "".join(rng.choice(alphabet) for _ in range(length))


def random_words(rng, length):
    words = ["the", "The", "THE", "model", "token", "diffusion", "we'll", "I'M", "x", "123", "4.5", "\u4e2d",
             "\u043f\u0440\u0438\u0432\u0435\u0442", "\u0645\u0631\u062d\u0628\u0627", "\U0001F600", "<|im_end|>",
             "<think>", "e\u0301", "\n", "  ", "\t", "don't", "(", ")", "==", "->"]
    return "".join(rng.choice(words) + rng.choice(["", " ", " ", " ", "\n", ", "]) for _ in range(length))


def build_corpus():
    cases = []

    def add(category, text):
        cases.append({"category": category, "text": text})

    lines = [ln for ln in PROSE.splitlines() if ln]
    for ln in lines:
        add("prose", ln)
    add("prose", PROSE)
    for ln in lines:  # sentence pieces and case variants
        add("prose", ln.upper())
        add("prose", " " + ln.lower() + " ")
    for i in range(0, len(lines) - 2, 3):
        add("prose", "\n\n".join(lines[i:i + 3]))
    for c in CODE:
        add("code", c)
    add("code", "".join(CODE))
    for c in CODE[:8]:
        add("code", c.replace("    ", "\t"))
        add("code", c.replace("\n", "\r\n"))
    for s in SCRIPTS:
        add("scripts", s)
    add("scripts", " ".join(SCRIPTS))
    for e in EMOJI:
        add("emoji", e)
    for c in COMBINING:
        add("combining", c)
    for n in NUMBERS:
        add("digits", n)
    for c in CONTRACTIONS:
        add("contractions", c)
    for w in WHITESPACE:
        add("whitespace", w)
    for s in SPECIAL:
        add("special", s)
    for c in CONTROL:
        add("control", c)

    rng = random.Random(20250131)
    for i in range(40):
        add("random_unicode", random_unicode(rng, rng.choice([5, 20, 80, 300, 1500])))
    for i in range(20):
        add("random_ascii", random_ascii(rng, rng.choice([10, 50, 200, 1000])))
    for i in range(20):
        add("random_words", random_words(rng, rng.choice([5, 30, 150])))
    return cases


# ---------------------------------------------------------------------------------------------
# Chat conversations
# ---------------------------------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city. Returns \u00b0C \u2014 \"quoted\".",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. \u5317\u4eac"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7, "default": 1},
                "ratio": {"type": "number", "default": 0.5},
                "flag": {"type": "boolean", "default": False, "nullable": None},
            },
            "required": ["city"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.\nMulti-line\tdescription with a tab.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}
BARE_TOOL = {"name": "calculator", "description": "Evaluate arithmetic", "parameters": {}}


def build_conversations():
    convs = []

    def add(name, messages, add_generation_prompt=True, enable_thinking=None, tools=None):
        case = {"name": name, "messages": messages, "add_generation_prompt": add_generation_prompt}
        if enable_thinking is not None:
            case["enable_thinking"] = enable_thinking
        if tools is not None:
            case["tools"] = tools
        convs.append(case)

    add("single_user", [{"role": "user", "content": "Hello!"}])
    add("single_user_no_gen", [{"role": "user", "content": "Hello!"}], add_generation_prompt=False)
    add("single_user_no_thinking", [{"role": "user", "content": "Hello!"}], enable_thinking=False)
    add("single_user_thinking_true", [{"role": "user", "content": "Hello!"}], enable_thinking=True)
    add("system_user", [{"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": "What is 2+2?"}])
    add("system_user_no_thinking", [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "Name a colour."}], enable_thinking=False)
    add("multi_turn", [{"role": "system", "content": "You are a poet."},
                       {"role": "user", "content": "Write a haiku."},
                       {"role": "assistant", "content": "Leaves fall\nsilent pond\nfrog jumps"},
                       {"role": "user", "content": "Another one, about \u6625\u5929."}])
    add("multi_turn_think_history", [
        {"role": "user", "content": "What is 3*7?"},
        {"role": "assistant", "content": "<think>\n3 times 7 is 21.\n</think>\n\n21"},
        {"role": "user", "content": "And 3*8?"}])
    add("last_assistant_think", [
        {"role": "user", "content": "Solve x+1=2"},
        {"role": "assistant", "content": "<think>\nSubtract 1.\n</think>\n\nx = 1"}], add_generation_prompt=False)
    add("last_assistant_plain", [
        {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": "Hi!"}], add_generation_prompt=False)
    add("assistant_think_no_newlines", [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "<think>short</think>answer"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "<think>\n\nlong\n\n</think>\n\n\nanswer2"}], add_generation_prompt=False)
    add("reasoning_content_field", [
        {"role": "user", "content": "Why?"},
        {"role": "assistant", "content": "Because.", "reasoning_content": "\nThinking hard.\n"}],
        add_generation_prompt=False)
    add("reasoning_content_before_last_query", [
        {"role": "user", "content": "Why?"},
        {"role": "assistant", "content": "Because.", "reasoning_content": "Hidden."},
        {"role": "user", "content": "Really?"}])
    add("tools_no_system", [{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER_TOOL])
    add("tools_with_system", [{"role": "system", "content": "You can call tools."},
                              {"role": "user", "content": "Weather in \u6771\u4eac and search news"}],
        tools=[WEATHER_TOOL, SEARCH_TOOL])
    add("tools_bare_function", [{"role": "user", "content": "2+2?"}], tools=[BARE_TOOL], enable_thinking=False)
    add("tool_call_roundtrip", [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "",
         "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                                                          "arguments": {"city": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "content": "{\"temp\": 21, \"sky\": \"clear\"}"}], tools=[WEATHER_TOOL])
    add("tool_call_string_arguments", [
        {"role": "user", "content": "Search cats"},
        {"role": "assistant", "content": "Let me search.",
         "tool_calls": [{"type": "function", "function": {"name": "search", "arguments": "{\"query\": \"cats\"}"}}]},
        {"role": "tool", "content": "Cats are mammals."},
        {"role": "assistant", "content": "Cats are mammals."}], tools=[SEARCH_TOOL], add_generation_prompt=False)
    add("parallel_tool_calls", [
        {"role": "user", "content": "Weather in Paris and Rome"},
        {"role": "assistant", "content": "",
         "tool_calls": [
             {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
             {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome", "days": 3}}}]},
        {"role": "tool", "content": "Paris: 20"},
        {"role": "tool", "content": "Rome: 25"}], tools=[WEATHER_TOOL])
    add("tool_call_without_function_wrapper", [
        {"role": "user", "content": "Compute"},
        {"role": "assistant", "content": "<think>\nneed calc\n</think>\n\nCalling.",
         "tool_calls": [{"name": "calculator", "arguments": {"expr": "2*(3+4)", "exact": True, "scale": 1.25,
                                                             "nested": {"list": [1, None, "x\u00e9"]}}}]},
        {"role": "tool", "content": "14"}], tools=[BARE_TOOL], enable_thinking=False)
    add("user_tool_response_text", [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "<think>a</think>A1"},
        {"role": "user", "content": "<tool_response>\nresult\n</tool_response>"},
        {"role": "assistant", "content": "<think>b</think>A2"}], add_generation_prompt=False)
    add("mid_system_message", [
        {"role": "system", "content": "S1"},
        {"role": "user", "content": "U1"},
        {"role": "system", "content": "S2 mid-conversation"},
        {"role": "user", "content": "U2"}])
    add("unicode_and_specials_in_content", [
        {"role": "user", "content": "Emoji \U0001F468\u200D\U0001F469\u200D\U0001F467 and e\u0301 and <|im_end|> inside\r\nCRLF"}],
        enable_thinking=False)
    add("empty_content", [{"role": "system", "content": ""}, {"role": "user", "content": ""}])
    add("long_multi_turn", [
        {"role": "system", "content": "You are Qwen."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke"},
        {"role": "assistant", "content": "<think>\npick a pun\n</think>\n\nWhy did the scarecrow win? Outstanding in his field."},
        {"role": "user", "content": "Another"},
        {"role": "assistant", "content": "I'm reading a book on anti-gravity. I can't put it down."},
        {"role": "user", "content": "Thanks!"}], enable_thinking=False)
    add("only_system_no_gen", [{"role": "system", "content": "System only."}], add_generation_prompt=False)
    add("tools_empty_list", [{"role": "user", "content": "No tools here"}], tools=[])
    add("assistant_prefill_last", [
        {"role": "user", "content": "Continue"},
        {"role": "assistant", "content": "Once upon"}], add_generation_prompt=False, enable_thinking=False)
    return convs


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

def encode_cases(tokenizer_dir, cases, meta):
    import tokenizers
    meta["tokenizers_version"] = tokenizers.__version__
    print("tokenizers", tokenizers.__version__, flush=True)
    tok = tokenizers.Tokenizer.from_file(os.path.join(tokenizer_dir, "tokenizer.json"))
    out = []
    for case in cases:
        text = case["text"]
        tok.encode_special_tokens = False
        ids = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = True
        ids_split = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        rec = dict(case)
        rec["ids"] = ids
        if ids_split != ids:
            rec["ids_special_as_text"] = ids_split
        rec["decoded"] = tok.decode(ids, skip_special_tokens=False)
        rec["decoded_skip_special"] = tok.decode(ids, skip_special_tokens=True)
        out.append(rec)
    # Decoding arbitrary id sequences: incomplete UTF-8 and lone continuation bytes become U+FFFD.
    rng = random.Random(7)
    byte_tokens = [tok.token_to_id(t) for t in ["\u00e4", "\u00b8", "\u0143", "\u00a4", "\u00e6", "\u0142"]]
    decode_only = []
    for ids in ([byte_tokens[0]], [byte_tokens[0], byte_tokens[1]], [byte_tokens[2]], byte_tokens,
                [151644, byte_tokens[0], 151645], [rng.randrange(0, 151643) for _ in range(200)],
                [rng.randrange(0, 151669) for _ in range(200)]):
        decode_only.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
    return out, decode_only


def render_transformers(tokenizer_dir, convs, template, meta):
    import transformers
    meta["transformers_version"] = transformers.__version__
    print("transformers", transformers.__version__, flush=True)
    try:
        hf = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
        meta["loader"] = "AutoTokenizer:" + type(hf).__name__
    except Exception:
        traceback.print_exc()
        hf = transformers.PreTrainedTokenizerFast(tokenizer_file=os.path.join(tokenizer_dir, "tokenizer.json"))
        meta["loader"] = "PreTrainedTokenizerFast"
    meta["loaded_template_matches_config"] = getattr(hf, "chat_template", None) == template
    print("loader", meta["loader"], "template matches:", meta["loaded_template_matches_config"], flush=True)
    out = []
    for conv in convs:
        kwargs = {}
        if "enable_thinking" in conv:
            kwargs["enable_thinking"] = conv["enable_thinking"]
        rendered = hf.apply_chat_template(conv["messages"], tools=conv.get("tools"), chat_template=template,
                                          add_generation_prompt=conv["add_generation_prompt"], tokenize=False, **kwargs)
        rec = dict(conv)
        rec["rendered"] = rendered
        rec["ids"] = hf.encode(rendered, add_special_tokens=False)
        out.append(rec)
    return out


def render_jinja2_fallback(convs, template, meta):
    """Same environment as transformers' chat-template renderer; used only where transformers is absent."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    meta["renderer"] = "jinja2-fallback " + jinja2.__version__

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    compiled = env.from_string(template)
    out = []
    for conv in convs:
        kwargs = {}
        if "enable_thinking" in conv:
            kwargs["enable_thinking"] = conv["enable_thinking"]
        rec = dict(conv)
        rec["rendered"] = compiled.render(messages=conv["messages"], tools=conv.get("tools"),
                                          add_generation_prompt=conv["add_generation_prompt"], **kwargs)
        out.append(rec)
    return out


def write_cases(path, top, lists):
    """One case per line: small, readable, and diffable."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\"meta\": " + json.dumps(top, ensure_ascii=False))
        for key, items in lists.items():
            f.write(",\n\"" + key + "\": [\n")
            f.write(",\n".join(json.dumps(x, ensure_ascii=False) for x in items))
            f.write("\n]")
        f.write("}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer-dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.tokenizer_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        template = json.load(f)["chat_template"]

    cases = build_corpus()
    print("corpus:", len(cases), "strings", flush=True)
    status = 0
    meta = {"python": sys.version.split()[0]}
    try:
        encoded, decode_only = encode_cases(args.tokenizer_dir, cases, meta)
        write_cases(os.path.join(args.out, "encode_cases.json"), meta, {"cases": encoded, "decode_only": decode_only})
        print("wrote", len(encoded), "encode cases", flush=True)
    except Exception:
        traceback.print_exc()
        status = 1

    convs = build_conversations()
    print("conversations:", len(convs), flush=True)
    chat_meta = {"python": sys.version.split()[0]}
    try:
        rendered = render_transformers(args.tokenizer_dir, convs, template, chat_meta)
        chat_meta["renderer"] = "transformers.apply_chat_template"
    except Exception:
        traceback.print_exc()
        status = 1
        rendered = render_jinja2_fallback(convs, template, chat_meta)
    write_cases(os.path.join(args.out, "chat_cases.json"), chat_meta, {"cases": rendered})
    print("wrote", len(rendered), "chat cases with", chat_meta["renderer"], flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
