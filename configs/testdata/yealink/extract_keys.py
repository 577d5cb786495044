#!/usr/bin/env python3
"""Extract Yealink setting names from public provisioning templates.

Sources (read from bare git mirrors, HEAD):
  fusionpbx/fusionpbx            resources/templates/provision/yealink/*/*.cfg   (Smarty)
  wazo-platform/wazo-provd-plugins plugins/wazo_yealink/*/templates/*.tpl        (Jinja2)
  wazo-platform/wazo-provd-plugins plugins/wazo_yealink/**/*.py (non-test)     (Python emitters)

Output:
  public-keys.txt          normalised names, sorted unique
  public-keys-sources.txt  name<TAB>repo:path[ (commented)]
"""
import re
import subprocess
import sys
from collections import OrderedDict

FPBX_REPO = 'fusionpbx/fusionpbx'
WAZO_REPO = 'wazo-platform/wazo-provd-plugins'
GITDIRS = {
    FPBX_REPO: '/work/.mirror/fusionpbx+fusionpbx/repo',
    WAZO_REPO: '/work/.mirror/wazo-platform+wazo-provd-plugins/repo',
}
OUTDIR = sys.argv[1] if len(sys.argv) > 1 else '/tmp/research'


def git(repo, *args):
    return subprocess.run(['git', '--git-dir=' + GITDIRS[repo], *args],
                          check=True, capture_output=True).stdout


def ls(repo):
    return git(repo, 'ls-tree', '-r', '--name-only', 'HEAD').decode().splitlines()


def show(repo, path):
    return git(repo, 'show', 'HEAD:' + path).decode('utf-8', 'replace')


# ---------------------------------------------------------------- normalisation
# Template variables that stand for an index -> N
INDEX_VARS = re.compile(
    r"^(\$row\.device_key_id(\s*[-+]\s*\d+)?|\$row\.line_number|line_no|template\['id'\])$")
# Non-index variables that can be expanded to concrete component values
# (Wazo: over_the_air.url.{{ handset }} iterates over HANDSETS_FW keys in entry.py)
EXPAND_VARS = {}

UNKNOWN_VARS = {}


def var_inner(tok):
    if tok.startswith('{{'):
        return tok[2:-2].strip(' -')
    return tok[1:-1].strip()


def normalise(name):
    """Return list of normalised names (list because of expansions)."""
    comps = re.findall(r'(?:\{\{[^{}]*\}\}|\{\$[^{}]*\}|[^.{])+', name)
    assert '.'.join(comps) == name, name
    outs = [[]]
    for c in comps:
        m = re.fullmatch(r'(\{\{[^{}]*\}\}|\{\$[^{}]*\})', c)
        if re.fullmatch(r'\d+', c) or c in ('X', 'x', 'Y', 'y', '*', '%d'):
            alts = ['N']
        elif m:
            v = var_inner(c)
            if INDEX_VARS.match(v):
                alts = ['N']
            elif v in EXPAND_VARS:
                alts = EXPAND_VARS[v]
            else:
                UNKNOWN_VARS.setdefault(v, name)
                alts = ['{' + v + '}']
        elif '{' in c:
            UNKNOWN_VARS.setdefault(c, name)
            alts = [c]
        else:
            alts = [c]
        outs = [o + [a] for o in outs for a in alts]
    return ['.'.join(o) for o in outs]


# ---------------------------------------------------------------- template parsing
COMP = r'(?:\*|%d|[A-Za-z0-9_\-]|\{\$[^{}]*\}|\{\{[^{}]*\}\})+'
NAME = r'[A-Za-z]' + r'(?:[A-Za-z0-9_\-]|\{\$[^{}]*\}|\{\{[^{}]*\}\})*' + r'(?:\.' + COMP + r')*'
ASSIGN_RE = re.compile(r'^\s*(' + NAME + r')\s*=')
PROSE_RE = re.compile(
    r'(?:example[:,]?|e\.g\.|value is:|configured as:|defined as:|like this:|new add)'
    r'\s*[^\x00-\x7f]*(' + NAME + r')\s*=', re.I)
BARE_RE = re.compile(r'^\s*(' + NAME + r')\s*$')   # commented "##name" listings


def split_segments(line, flavour):
    """Split a line on template control tags, keeping variable tags inline."""
    segs, cur, i, n = [], [], 0, len(line)
    while i < n:
        ch = line[i]
        if flavour == 'jinja' and line.startswith('{%', i):
            j = line.find('%}', i)
            j = n if j < 0 else j + 2
            segs.append(''.join(cur)); cur = []; i = j; continue
        if flavour == 'jinja' and line.startswith('{#', i):
            j = line.find('#}', i)
            j = n if j < 0 else j + 2
            segs.append(''.join(cur)); cur = []; i = j; continue
        if flavour == 'jinja' and line.startswith('{{', i):
            j = line.find('}}', i)
            j = n if j < 0 else j + 2
            cur.append(line[i:j]); i = j; continue
        if flavour == 'smarty' and ch == '{':
            # balanced scan (conditions may contain {$var} inside)
            depth, j = 0, i
            while j < n:
                if line[j] == '{':
                    depth += 1
                elif line[j] == '}':
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            tag = line[i:j + 1]
            if re.fullmatch(r'\{\$[^{}]*\}', tag):
                cur.append(tag)          # variable: may be part of a name
            else:
                segs.append(''.join(cur)); cur = []   # control tag / literal
            i = j + 1; continue
        cur.append(ch); i += 1
    segs.append(''.join(cur))
    return segs


def template_names(text, flavour):
    """Yield (raw_name, commented) for every setting name in a template."""
    if flavour == 'smarty':
        text = re.sub(r'\{\*.*?\*\}', '', text, flags=re.S)
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith('#!'):
            continue
        commented = False
        if s.startswith('#'):
            commented = True
            s = s.lstrip('#').strip()
        for seg in split_segments(s, flavour):
            m = ASSIGN_RE.match(seg)
            if m:
                nm = m.group(1)
                if commented and '.' not in nm:
                    continue       # prose such as "#value=1"
                yield nm, commented
            elif commented:
                m = BARE_RE.match(seg)
                if m and '.' in m.group(1) and re.search(r'[a-z]', m.group(1)):
                    yield m.group(1), True
                    continue
                # prose examples: "#e.g. name = v", "##Example:name = v",
                # "#... the value is: name = v", "#  V84 new add name= ##"
                for m in PROSE_RE.finditer(seg):
                    if '.' in m.group(1):
                        yield m.group(1), True


# ---------------------------------------------------------------- python emitters
STR_RE = re.compile(r"""(?<![A-Za-z0-9_])(f?)(['"])(.*?)(?<!\\)\2""")


def python_names(text):
    prefixes, suffixes, direct = [], [], []
    for m in STR_RE.finditer(text):
        s = m.group(3)
        # yield f'linekey.{linekey_no}'  -> prefix generator
        pre = text[max(0, m.start() - 6):m.start()]
        if pre.endswith('yield ') and re.fullmatch(r'[a-z_]+(?:\.(?:[a-z_]+|\{[^{}]*\}))+', s):
            prefixes.append(re.sub(r'\{[^{}]*\}', '{{ line_no }}', s))
            continue
        a = re.match(r'^\{prefix\}\.([A-Za-z0-9_.]+)\s*=', s)
        if a:
            suffixes.append(a.group(1)); continue
        a = re.match(r'^([a-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+)\s*=\s', s)
        if a:
            direct.append(a.group(1))
    for p in prefixes:
        for sfx in suffixes:
            yield p + '.' + sfx, False
    for d in direct:
        yield d, False


# ---------------------------------------------------------------- main
def main():
    # concrete handset ids used by Wazo for over_the_air.url.{{ handset }}
    handsets = set()
    for p in ls(WAZO_REPO):
        if p.startswith('plugins/wazo_yealink/') and p.endswith('entry.py'):
            t = show(WAZO_REPO, p)
            for blk in re.findall(r'HANDSETS_FW\s*=\s*\{(.*?)\n\}', t, re.S):
                handsets.update(re.findall(r"^\s*'([a-z0-9_]+)'\s*:", blk, re.M))
    EXPAND_VARS['handset'] = sorted(handsets)

    fpbx = sorted(p for p in ls(FPBX_REPO)
                  if re.fullmatch(r'resources/templates/provision/yealink/[^/]+/[^/]+\.cfg', p))
    wazo_all = ls(WAZO_REPO)
    wazo_tpl = sorted(p for p in wazo_all
                      if re.fullmatch(r'plugins/wazo_yealink/[^/]+/templates/[^/]+\.tpl', p))
    wazo_py = sorted((p for p in wazo_all
                      if p.startswith('plugins/wazo_yealink/') and p.endswith('.py')
                      and '/tests/' not in p),
                     key=lambda p: (not p.startswith('plugins/wazo_yealink/common/'), p))

    # rank: lower is better. uncommented beats commented; then source order.
    best = {}   # name -> (rank, seq, src, commented)
    seq = 0
    counts = {'fpbx': 0, 'tpl': 0, 'py': 0}

    def add(name, src, commented, tier):
        nonlocal seq
        seq += 1
        for nn in normalise(name):
            rank = (1 if commented else 0, tier)
            cur = best.get(nn)
            if cur is None or (rank, seq) < (cur[0], cur[1]):
                best[nn] = (rank, seq, src, commented)

    for p in fpbx:
        counts['fpbx'] += 1
        for nm, c in template_names(show(FPBX_REPO, p), 'smarty'):
            add(nm, f'{FPBX_REPO}:{p}', c, 0)
    for p in wazo_tpl:
        counts['tpl'] += 1
        for nm, c in template_names(show(WAZO_REPO, p), 'jinja'):
            add(nm, f'{WAZO_REPO}:{p}', c, 1)
    for p in wazo_py:
        got = list(python_names(show(WAZO_REPO, p)))
        if got:
            counts['py'] += 1
        for nm, c in got:
            add(nm, f'{WAZO_REPO}:{p}', c, 2)

    names = sorted(best)
    with open(f'{OUTDIR}/public-keys.txt', 'w') as f:
        f.writelines(n + '\n' for n in names)
    with open(f'{OUTDIR}/public-keys-sources.txt', 'w') as f:
        for n in names:
            _, _, src, c = best[n]
            f.write(f'{n}\t{src}{" (commented)" if c else ""}\n')

    print('files: fusionpbx cfg=%d wazo tpl=%d wazo py(with names)=%d' %
          (counts['fpbx'], counts['tpl'], counts['py']), file=sys.stderr)
    print('names: %d (commented-only: %d)' %
          (len(names), sum(1 for n in names if best[n][3])), file=sys.stderr)
    if UNKNOWN_VARS:
        print('unnormalised template vars:', UNKNOWN_VARS, file=sys.stderr)


if __name__ == '__main__':
    main()
