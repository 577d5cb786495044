#!/bin/sh
# packaging/copyright.sh: prints the copyright file of the provbox .deb
# (/usr/share/doc/provbox/copyright; Debian policy 12.5): provbox's own
# terms, then the license and NOTICE files of Go and of every module linked
# into /usr/bin/provbox for GOOS/GOARCH, which their licenses ask a binary
# distribution to carry. make deb runs it from the repository's root.
set -eu
go=${GO:-go}

cat <<HEAD
provbox — provisioning appliance for Yealink desk phones
Source: https://github.com/provbox/provbox
Copyright: the provbox maintainers
License: proprietary (the package's License field)

/usr/bin/provbox also contains the following software, each under the
license that follows its name. SQLite, compiled into it with
github.com/mattn/go-sqlite3, is in the public domain.
HEAD

section() { # section TITLE DIR: the license and notice files in DIR
	found=
	for f in $(find "$2" -maxdepth 1 -type f | grep -iE '/(licen[cs]e|copying|notice)[^/]*$' | sort); do
		if [ -z "$found" ]; then
			printf '\n== %s\n' "$1"
			found=1
		fi
		printf '\n-- %s\n\n' "$(basename "$f")"
		# Every Debian system has the Apache license's text (base-files).
		if grep -q 'Apache License' "$f" && grep -q 'Version 2.0, January 2004' "$f" &&
			grep -q 'END OF TERMS AND CONDITIONS' "$f"; then
			echo "Apache License, Version 2.0: /usr/share/common-licenses/Apache-2.0"
		else
			cat "$f"
		fi
	done
	if [ -z "$found" ]; then
		echo "packaging/copyright.sh: no license file in $2 ($1)" >&2
		exit 1
	fi
}

section "Go $($go env GOVERSION) (standard library and runtime)" "$($go env GOROOT)"
$go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/provbox |
	sort -u | while read -r path version dir; do
	section "$path $version" "$dir"
done
