# fnlen.awk: prints "LINES NAME FILE" for each function of a C file, the body counted from
# the "{" in column 0 to the "}" in column 0 (the code's layout, .clang-format). Tables
# (initialisers) are not functions and are not counted.
/^[A-Za-z_].*\(/ && !/;[ \t]*$/ { cand = $0 }
/^\{/ { if (cand != "") { start = FNR; name = cand; inb = 1 } }
/^\}/ {
    if (inb) {
        match(name, /[A-Za-z_0-9]+\(/)
        print FNR - start + 1, substr(name, RSTART, RLENGTH - 1), FILENAME
        inb = 0; cand = ""
    }
}
