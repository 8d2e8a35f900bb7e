#!/usr/bin/env bash
# readme_tables.sh — README.md names what the code has, no more, no less:
#   - the "What it does" table's rows layers, activations, initializers,
#     losses, metrics and optimizers against `mimo list CATEGORY` (the
#     code's own tables: kind.c's kinds[], spec.c's name arrays);
#   - its tools row and the Commands block against `mimo --help`;
#   - the configs table against the files in configs/;
#   - the gen bullet against `mimo gen --help`'s datasets;
#   - the Reliability table's tests against tests/.
# A name in the code but not in README fails, and a name in README but not
# in the code fails. In a row, the names are the `backticked` words before
# its first ';', leaving out what is in parentheses (notes such as
# "(momentum, nesterov)"). A few seconds (the self-check below runs the
# comparison 8 more times).
source "$(dirname "$0")/lib.bash"
README=${README:-$SRC/README.md} # (the self-check below swaps in copies)

# names TEXT: the backticked words of TEXT before its first ';' outside
# parentheses, one per line, sorted
names() {
    sed -e 's/([^()]*)//g' -e 's/;.*//' <<<"$1" | grep -oE '`[^`]+`' | tr -d '`' | sort -u
}

# row CATEGORY: the second cell of README's "| CATEGORY | ... |" row
row() {
    awk -v c="$1" -F' [|] ' '$1 == "| " c { sub(/ [|]$/, "", $2); print $2; exit }' "$README"
}

# same WHAT CODE README: both lists hold the same names; else says which
# side lacks which, and fails
same() {
    local what=$1 code=$2 doc=$3 ok=0
    if [ -z "$code" ] || [ -z "$doc" ]; then
        echo "  $what: no names found (code: $(wc -w <<<"$code"), README: $(wc -w <<<"$doc"))"
        return 1
    fi
    while IFS= read -r n; do
        [ -n "$n" ] && echo "  $what: '$n' is in the code but not in README.md" && ok=1
    done < <(comm -23 <(sort -u <<<"$code") <(sort -u <<<"$doc"))
    while IFS= read -r n; do
        [ -n "$n" ] && echo "  $what: '$n' is in README.md but not in the code" && ok=1
    done < <(comm -13 <(sort -u <<<"$code") <(sort -u <<<"$doc"))
    return $ok
}

# the code's lists
code_names() { "$MIMO" list "$1"; }
help_commands() { "$MIMO" --help | awk '/^commands:/ { f = 1; next } f && /^  [a-z]/ { print $1 }'; }
gen_names() { "$MIMO" gen --help | awk '/^datasets:/ { f = 1; next } f && /^  [a-z]/ { print $1 }'; }
config_files() { (cd "$SRC/configs" && find . -name '*.yaml' | sed -e 's|^\./||' -e 's|\.yaml$||'); }

# README's lists
commands_block() { # the second word of each "mimo X" line of the Commands block
    awk '/^## Commands/ { s = 1 } s && /^```/ { if (++fence == 2) exit; next }
         s && fence == 1 && $1 == "mimo" { print $2 }' "$README"
}
configs_table() { # the first cell of each row of the configs table
    awk '/^### The configs/ { s = 1; next } s && /^#/ { exit }
         s && /^\| `/ { split($0, c, " [|] "); print c[1] }' "$README" |
        grep -oE '`[^`]+`' | tr -d '`'
}
gen_bullet() { # the **gen** bullet, up to its first sentence's end
    awk '/^- \*\*gen\*\*/ { s = 1 } s && /^- / && !/^- \*\*gen\*\*/ { exit } s' "$README" |
        tr '\n' ' ' | sed -e 's/([^()]*)//g' -e 's/\. .*//' | grep -oE '`[^`]+`' | tr -d '`'
}

check_all() {
    local bad=0
    for cat in layers activations initializers losses metrics optimizers; do
        same "$cat (What it does)" "$(code_names "$cat")" "$(names "$(row "$cat")")" || bad=1
    done
    same "tools (What it does)" "$(help_commands)" "$(names "$(row tools)")" || bad=1
    same "Commands block" "$(help_commands)" "$(commands_block)" || bad=1
    same "configs table" "$(config_files)" "$(configs_table)" || bad=1
    same "gen datasets" "$(gen_names)" "$(gen_bullet)" || bad=1
    return $bad
}

check "README.md names what the code has" check_all

# The Reliability table's tests exist: `cli_NAME` is tests/cli/NAME.sh,
# `test_NAME` tests/test_NAME.c (a renamed test cannot leave the table
# pointing at nothing).
reliability_tests() {
    sed -n '/^## Reliability$/,/^## /p' "$README" | grep '^| ' |
        grep -oE '`(cli|test)_[a-z0-9_]+`' | tr -d '`' | sort -u
}
missing_tests() {
    local t n=0 bad=0
    for t in $(reliability_tests); do
        n=$((n + 1))
        [ -f "$SRC/tests/cli/${t#cli_}.sh" ] || [ -f "$SRC/tests/$t.c" ] ||
            { echo "  README's Reliability table names $t, which does not exist"; bad=1; }
    done
    [ "$n" -gt 10 ] || { echo "  the Reliability table names only $n tests"; bad=1; }
    return $bad
}
check "the Reliability table names tests that exist" missing_tests
expect 0 "sparse_categorical_crossentropy" list losses
expect 0 "layers: dense activation" list
expect 0 "usage: mimo list" list --help
expect 2 "unknown category 'kinds'" list kinds
expect 2 "unexpected argument 'metrics'" list losses metrics

# Self-check: the comparison sees a name dropped from README and a name
# README has that the code lacks, in each kind of list (so that it cannot
# pass by finding nothing).
mutant() { # SED-EXPRESSION: check_all on a copy of README edited by it fails
    sed -e "$1" "$SRC/README.md" >"$TMP/README.md"
    ! README=$TMP/README.md check_all >/dev/null
}
check "self-check: a loss missing from the table fails" mutant 's/`huber`, //'
check "self-check: a metric the code lacks fails" mutant 's/`r2`;/`r2`, `rmse`;/'
check "self-check: a layer kind missing fails" mutant 's/`layer_norm`, //'
check "self-check: a command missing from the tools row fails" mutant '/^| tools |/s/`bench`, //'
check "self-check: a command missing from the Commands block fails" mutant '/^mimo list /d'
check "self-check: a config missing from the table fails" mutant '/^| `fashion-shirt` |/d'
check "self-check: a config that does not exist fails" mutant 's/^| `fashion-shirt` |/| `fashion-shirts` |/'
check "self-check: a gen dataset missing fails" mutant 's/`sin12`, //'
mutant_tests() { # SED-EXPRESSION: missing_tests on a copy of README edited by it fails
    sed -e "$1" "$SRC/README.md" >"$TMP/README.md"
    ! README=$TMP/README.md missing_tests >/dev/null
}
check "self-check: a Reliability row naming a test that does not exist fails" \
    mutant_tests 's/`cli_scale`/`cli_scales`/'
finish
