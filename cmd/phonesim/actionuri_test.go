package main

import (
	"net/netip"
	"testing"
)

func TestDecideActionURI(t *testing.T) {
	ready := actionURIConfig{enable: true, limitIP: "127.0.0.1", adminUser: "admin", adminPass: "s3cret"}
	with := func(f func(*actionURIConfig)) actionURIConfig {
		c := ready
		f(&c)
		return c
	}
	good := actionURIRequest{from: netip.MustParseAddr("127.0.0.1"), user: "admin", pass: "s3cret", hasAuth: true, key: "AutoP"}
	req := func(f func(*actionURIRequest)) actionURIRequest {
		r := good
		f(&r)
		return r
	}
	tests := []struct {
		name string
		c    actionURIConfig
		r    actionURIRequest
		want actionURIDecision
	}{
		{"AutoP", ready, good, actionURIDecision{status: 200, autop: true}},
		{"autop: the firmware matches exactly", ready, req(func(r *actionURIRequest) { r.key = "autop" }), actionURIDecision{status: 400}},
		{"firmware commands", ready, req(func(r *actionURIRequest) { r.key = "DNDOn;CallEnd" }), actionURIDecision{status: 200}},
		{"Reset is not emulated", ready, req(func(r *actionURIRequest) { r.key = "Reset" }), actionURIDecision{status: 400}},
		{"Reboot", ready, req(func(r *actionURIRequest) { r.key = "Reboot" }), actionURIDecision{status: 200, reboot: true}},
		{"key presses", ready, req(func(r *actionURIRequest) { r.key = "F1;F3;DOWN;OK" }), actionURIDecision{status: 200}},
		{"unknown key", ready, req(func(r *actionURIRequest) { r.key = "SELF_DESTRUCT" }), actionURIDecision{status: 400}},
		{"one unknown among known", ready, req(func(r *actionURIRequest) { r.key = "OK;NOPE" }), actionURIDecision{status: 400}},
		{"no key", ready, req(func(r *actionURIRequest) { r.key = "" }), actionURIDecision{status: 400}},
		{"factory phone: blank limit_ip", factoryFlash().actionURI, req(func(r *actionURIRequest) { r.pass = "admin" }),
			actionURIDecision{status: 403}},
		{"disabled, before everything", with(func(c *actionURIConfig) { c.enable = false; c.limitIP = "any" }),
			req(func(r *actionURIRequest) { r.hasAuth = false }), actionURIDecision{status: 403}},
		{"source not in limit_ip", ready, req(func(r *actionURIRequest) { r.from = netip.MustParseAddr("127.0.0.2") }),
			actionURIDecision{status: 403}},
		{"limit_ip before credentials", ready,
			req(func(r *actionURIRequest) { r.from = netip.MustParseAddr("127.0.0.2"); r.hasAuth = false }), actionURIDecision{status: 403}},
		{"limit_ip any", with(func(c *actionURIConfig) { c.limitIP = "any" }),
			req(func(r *actionURIRequest) { r.from = netip.MustParseAddr("10.9.8.7") }), actionURIDecision{status: 200, autop: true}},
		{"limit_ip wildcard", with(func(c *actionURIConfig) { c.limitIP = "10.0.0.5, 127.0.*.*" }), good,
			actionURIDecision{status: 200, autop: true}},
		{"no credentials", ready, req(func(r *actionURIRequest) { r.hasAuth = false; r.user, r.pass = "", "" }),
			actionURIDecision{status: 401}},
		{"wrong password", ready, req(func(r *actionURIRequest) { r.pass = "admin" }), actionURIDecision{status: 401}},
		{"wrong user", ready, req(func(r *actionURIRequest) { r.user = "user" }), actionURIDecision{status: 401}},
		{"prompt on screen (factory show option)", with(func(c *actionURIConfig) { c.prompt = true }), good,
			actionURIDecision{status: 403}},
		{"credentials before the prompt", with(func(c *actionURIConfig) { c.prompt = true }),
			req(func(r *actionURIRequest) { r.pass = "x" }), actionURIDecision{status: 401}},
	}
	for _, tt := range tests {
		if got := decideActionURI(tt.c, tt.r); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestLimitIPAllows(t *testing.T) {
	tests := []struct {
		list string
		ip   string
		want bool
	}{
		{"", "127.0.0.1", false},
		{" , ", "127.0.0.1", false},
		{"any", "192.0.2.1", true},
		{"Any", "192.0.2.1", true},
		{"10.1.4.3,10.1.4.23", "10.1.4.23", true},
		{"10.1.4.3,10.1.4.23", "10.1.4.2", false},
		{"10.10.*.*", "10.10.255.0", true},
		{"10.10.*.*", "10.11.0.0", false},
		{"*.*.*.*", "1.2.3.4", true},
		{"10.10.*", "10.10.1.1", false},
		{"10.10.1.01", "10.10.1.1", true},
		{"10.10.1.x", "10.10.1.1", false},
		{"127.0.0.1", "::ffff:127.0.0.1", true},
		{"any", "::1", true},
		{"*.*.*.*", "::1", false},
	}
	for _, tt := range tests {
		if got := limitIPAllows(tt.list, netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("limitIPAllows(%q, %s) = %v", tt.list, tt.ip, got)
		}
	}
}

func TestQueryValue(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{"key=AutoP", "AutoP", true},
		{"key=F1;F3;OK", "F1;F3;OK", true},
		{"x=1&key=OK%3BMUTE", "OK;MUTE", true},
		{"keys=OK", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got, ok := queryValue(tt.raw, "key"); got != tt.want || ok != tt.ok {
			t.Errorf("queryValue(%q) = %q, %v", tt.raw, got, ok)
		}
	}
}
