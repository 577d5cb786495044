// Package actionuri tells a Yealink phone to re-provision now through its
// Action URI: an HTTPS GET to the phone itself, the other trigger of
// provbox's sync loop (sip.sync_trigger = "action_uri"). Unlike a SIP
// check-sync NOTIFY, it works with the phone's sip.trust_ctrl on (SIP
// accepted from the registrar only), which is why provbox keeps trust_ctrl
// on with it.
//
//	GET https://<phone ip>:443/servlet?key=AutoP
//	Authorization: Basic admin:<the phones' admin password>
//
// The phone accepts it only from the addresses in its
// features.action_uri_limit_ip (provbox's config writes the box's address)
// and, with features.show_action_uri_option = 0, without asking its user
// "Allow remote control?" first; it answers 200 and starts an auto
// provisioning run, as "Auto Provision Now" does. Sources: T2/T4/T5 admin
// guide "Action URI" (https://easymanua.ls/yealink/t21pe2/manual?p=465,
// https://easymanua.ls/yealink/sip-t4u-series/manual?p=480 for the
// user:password@ form, which clients send as HTTP Basic). The key AutoP is
// in public Yealink firmware source and tools but in no Yealink guide page
// we found (UNVERIFIED in a document); so is the status a phone answers to
// a refused address (we take 403) or missing credentials (401).
//
// The phone presents its own device certificate, which no CA we hold can
// verify, so the certificate is not checked: TLS still keeps the admin
// password off the wire for a passive listener, which plain HTTP would not.
package actionuri

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/provbox/provbox/appliance"
)

// Key is the Action URI key that starts auto provisioning.
const Key = "AutoP"

// Client triggers phones through their Action URI.
type Client struct {
	Port     int           // the phones' HTTPS port (default 443)
	Password func() string // the phones' admin password (user "admin")
	Timeout  time.Duration // per request, connect to answer (default 5 s)
	Logger   *slog.Logger

	once   sync.Once
	client *http.Client
}

// URL is the Action URI of the phone at ip.
func (c *Client) URL(ip string) string {
	port := c.Port
	if port == 0 {
		port = 443
	}
	return "https://" + net.JoinHostPort(ip, strconv.Itoa(port)) + "/servlet?key=" + Key
}

func (c *Client) init() {
	c.once.Do(func() {
		if c.Timeout <= 0 {
			c.Timeout = 5 * time.Second
		}
		c.client = &http.Client{
			Timeout: c.Timeout,
			Transport: &http.Transport{
				Proxy: nil, // the phone is on the LAN: never an environment proxy
				// A phone's device certificate cannot be verified (see the
				// package comment).
				TLSClientConfig:       &tls.Config{InsecureSkipVerify: true},
				DisableKeepAlives:     true, // each phone is asked once
				TLSHandshakeTimeout:   c.Timeout,
				ResponseHeaderTimeout: c.Timeout,
			},
			// A phone answers; it never redirects provbox elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
}

// Trigger asks the phone to re-provision now and answers the outcome to
// record: its HTTP status, or Status 0 with an empty Reason when it did not
// answer (unreachable), or with a Reason when it could not be asked.
func (c *Client) Trigger(ctx context.Context, p *appliance.SyncTarget) appliance.NotifyResult {
	c.init()
	res := appliance.NotifyResult{MAC: p.MAC, Version: p.ConfigVersion, Via: appliance.TriggerActionURI}
	host, _, err := net.SplitHostPort(p.SIPAddress)
	if err != nil || net.ParseIP(host) == nil {
		res.Reason = "no address known yet for the phone"
		return res
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL(host), nil)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	pw := ""
	if c.Password != nil {
		pw = c.Password()
	}
	req.SetBasicAuth("admin", pw)
	req.Header.Set("User-Agent", "provbox")
	resp, err := c.client.Do(req)
	if err != nil {
		var ne net.Error
		var op *net.OpError
		switch {
		case errors.As(err, &ne) && ne.Timeout(), ctx.Err() != nil:
			return res // no answer: unreachable
		case errors.As(err, &op) && op.Op == "dial":
			res.Reason = "cannot connect to the phone's web server: " + op.Err.Error()
		default:
			res.Reason = "request failed: " + err.Error()
		}
		return res
	}
	resp.Body.Close()
	res.Status = resp.StatusCode
	res.Reason = http.StatusText(resp.StatusCode)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		res.Reason += " (the phone refused the admin password: it has not applied provbox's config, or was reset)"
	case http.StatusForbidden:
		res.Reason += " (the phone does not allow provbox's address: its features.action_uri_limit_ip)"
	}
	if c.Logger != nil && (resp.StatusCode < 200 || resp.StatusCode >= 300) {
		c.Logger.Debug("action uri refused", "mac", p.MAC, "status", resp.StatusCode)
	}
	return res
}

// String names the trigger for logs.
func (c *Client) String() string { return fmt.Sprintf("action URI (https port %d)", c.Port) }
