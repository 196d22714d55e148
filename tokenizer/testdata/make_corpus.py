#!/usr/bin/env python3
"""make_corpus.py writes parity_corpus.json, the strings the tokenizer parity
test encodes with both this package and transformers.js. Deterministic.

Run from the repository root: python3 tokenizer/testdata/make_corpus.py
"""
import json, os, random, unicodedata

DATA = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'data')
rng = random.Random(20250828)
out = []

def add(s):
    out.append(s)

# Medical text: OmniMedVQA questions, options and answers.
text = json.load(open(os.path.join(DATA, 'omnimedvqa-text', 'omnimedvqa_text_sample.json')))
real = json.load(open(os.path.join(DATA, 'omnimedvqa-real', 'omnimedvqa_real.json')))
for item in rng.sample(text, 900):
    add(item['question'])
    opts = [item.get('option_' + k) for k in 'ABCD' if item.get('option_' + k)]
    add(' '.join(opts))
    add(item['modality_type'] + ' | ' + item['dataset'] + ': ' + item['gt_answer'])
for item in rng.sample(real, 120):
    add(item['question'] + '\n' + '\n'.join(
        f"{k}. {item['option_' + k]}" for k in 'ABCD' if item.get('option_' + k)))
for name in ('bccd', 'busi', 'pneumoniamnist'):
    coll = json.load(open(os.path.join(DATA, name, 'collection.json')))
    for v in coll.get('labels', {}).values():
        add(str(v))
    for k in ('name', 'modality', 'anatomy', 'task', 'source', 'licence', 'license'):
        if isinstance(coll.get(k), str):
            add(coll[k])

# Numbers.
for _ in range(80):
    add(str(rng.randint(0, 10**rng.randint(1, 15))))
    add(f"{rng.uniform(-1000, 1000):.{rng.randint(0, 6)}f}")
for s in ['1,234,567.89', '3.14159e-10', '0x1F', '2025-08-28T12:34:56Z', '+1 (555) 010-9999',
          '٣٤٥ ۱۲۳', '½ ¾ ⅞', 'Ⅻ ⅻ', '①②③', '１２３４５', '10^6 cells/µL', '37.5°C', '120/80 mmHg',
          'KL grade 0–4', '5×10⁹/L', 'x²+y²=z²', '₀₁₂']:
    add(s)

# Code.
for s in ['func main() {\n\tfmt.Println("hello")\n}\n',
          'def f(x):\n    return x ** 2  # square\n\n\nprint(f(3))',
          '{"question_id": "omni_00000", "option_A": "CT"}',
          'for (let i = 0; i < n; i++) { sum += a[i]; }',
          '#include <stdio.h>\nint main(void){return 0;}',
          'SELECT * FROM items WHERE modality = \'MRI\';',
          '    indented\n        more\n\t\ttabs\t\tinside  ',
          '<div class="x">&amp; &lt;tag&gt;</div>', 'a->b => c := d != e == f <= g >= h',
          '$ echo $HOME && ls -la | grep "*.go"', '```python\nimport numpy as np\n```']:
    add(s)

# Emoji, CJK and other scripts.
for s in ['😀', '👍🏽 great', '👨‍👩‍👧‍👦 family', '🇫🇷🇯🇵', '❤️‍🔥', 'x-ray 🩻 and 🫀 heart 🧬',
          '胸部X光片显示肺炎。', '这是什么成像方式？', 'この画像は何ですか？', 'レントゲン写真', '폐렴이 있습니까?',
          'Рентгенография грудной клетки', 'صورة بالأشعة السينية', 'צילום רנטגן', 'एक्स-रे छवि',
          'ภาพเอกซเรย์', 'Ελληνικά γράμματα', 'naïve café résumé', 'Straße ß ẞ', 'ﬁ ﬂ ligatures',
          'e\u0301 cafe\u0301', 'A\u030a', 'zero\u200bwidth', 'nbsp\u00a0here', 'ideographic\u3000space',
          'line\u2028sep', 'mixed 中文 English 123 العربية', 'a\u0085 b', 'x\ufeff y', '\u2028\u2029z',
          "it'ſ ok", '\u180e x', 'x\u000b\u000cy', 'tag\U000E0041 char']:
    add(s)

# Contractions and case.
for s in ["I'm sure it's fine, don't worry", "WE'LL SEE, THEY'VE GONE, SHE'D", "'s 't 're 've 'm 'll 'd",
          "rock'n'roll", "O'Neil's", "it'S It'LL"]:
    add(s)

# Whitespace runs.
for n in range(1, 13):
    add('a' + ' ' * n + 'b')
    add('\n' * n)
    add('x' + '\n' * n + 'y')
    add(' ' * n)
    add('word' + ' ' * n)
    add(' ' * n + 'word')
for s in ['\r\n', 'a\r\nb\r\n', ' \n \n ', '\t', 'a\t\tb', ' \t\n', 'end.\n\n\n', '  hello  world  ',
          'x \n\n  y', '\n\n\ttext', 'a  \r\n  b']:
    add(s)

# Special and added tokens, alone, glued and mixed.
SPECIAL = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|vision_end|>',
           '<|image_pad|>', '<think>', '</think>', '<answer>', '</answer>', '<|object_ref_start|>',
           '<|object_ref_end|>', '<|box_start|>', '<|box_end|>', '<|quad_start|>', '<|quad_end|>',
           '<|vision_pad|>', '<|video_pad|>', '<tool_call>', '</tool_call>', '<|fim_prefix|>',
           '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>',
           '<tool_response>', '</tool_response>']
for sp in SPECIAL:
    add(sp)
    add('a' + sp + 'b')
    add(' ' + sp + ' ')
    add('text ' + sp + '\n' + sp + sp + 'more')
add('a<|image_pad|>b')
add('<|im_start' + '|>partial <|im_' + 'end| and <|unknown|>')
add('<<|im_start|>>')
for _ in range(60):
    k = rng.randint(0, 20)
    q = rng.choice(text)
    add('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n'
        '<|vision_start|>' + '<|image_pad|>' * k + '<|vision_end|>' + q['question'] + '\n'
        + '\n'.join(f"{c}. {q['option_' + c]}" for c in 'ABCD' if q.get('option_' + c))
        + '<|im_end|>\n<|im_start|>assistant\n<think>The image shows ' + q['modality_type']
        + '.</think><answer>' + q['gt_answer'][:1] + '</answer><|im_end|>\n')

# Random mixtures of the above pieces.
pieces = out[:]
for _ in range(150):
    add(''.join(rng.choice(pieces) for _ in range(rng.randint(2, 4))))

assert len(out) >= 2000, len(out)
path = os.path.join(os.path.dirname(__file__), 'parity_corpus.json')
with open(path, 'w', encoding='utf-8') as f:
    json.dump(out, f, ensure_ascii=False, indent=0)
    f.write('\n')
print(len(out), 'strings,', sum(len(s.encode()) for s in out), 'bytes ->', path)
