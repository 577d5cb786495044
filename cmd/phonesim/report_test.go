package main

import "testing"

func TestExpandActionURL(t *testing.T) {
	vars := reportVars{mac: "001565aabbcc", ip: "127.1.0.1", model: "T46U", firmware: "108.86.0.90", activeUser: "1001"}
	tests := []struct {
		name string
		tmpl string
		v    reportVars
		want string
	}{
		{"all five", "http://p/r?m=$mac&i=$ip&mo=$model&f=$firmware&u=$active_user", vars,
			"http://p/r?m=001565aabbcc&i=127.1.0.1&mo=T46U&f=108.86.0.90&u=1001"},
		{"in the path, twice", "https://p:8443/a/$mac/$mac.txt", vars, "https://p:8443/a/001565aabbcc/001565aabbcc.txt"},
		{"no account: empty user", "http://p/r?u=$active_user&m=$mac", reportVars{mac: "001565aabbcc"},
			"http://p/r?u=&m=001565aabbcc"},
		{"plain substitution, no escaping (as the firmware)", "http://p/r?u=$active_user", reportVars{activeUser: "1001@pbx&x=1"},
			"http://p/r?u=1001@pbx&x=1"},
		{"other variables left as written", "http://p/r?h=$active_host&c=$call_id&m=$mac", vars,
			"http://p/r?h=$active_host&c=$call_id&m=001565aabbcc"},
		{"no variables", "http://p/done", vars, "http://p/done"},
	}
	for _, tt := range tests {
		if got := expandActionURL(tt.tmpl, tt.v); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
