package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/provbox/provbox/appliance"
)

// CheckSyncEvent is the Event of the NOTIFY: re-provision, no reboot (with
// sip.notify_reboot_enable = 0 in the phone's config).
const CheckSyncEvent = "check-sync;reboot=false"

// buildCheckSync builds the NOTIFY to user at addr ("ip:port"), leaving
// from local ("ip:port", the address the phone answers to).
func buildCheckSync(user, addr, local string) (*sipmsg.Request, error) {
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	lhost, lport, err := splitAddr(local)
	if err != nil {
		return nil, err
	}
	req := sipmsg.NewRequest(sipmsg.NOTIFY, sipmsg.Uri{Scheme: "sip", User: user, Host: host, Port: port})
	via := &sipmsg.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: lhost, Port: lport, Params: sipmsg.NewParams()}
	via.Params.Add("branch", sipmsg.GenerateBranch())
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	from := &sipmsg.FromHeader{DisplayName: "provbox", Address: sipmsg.Uri{Scheme: "sip", User: "provbox", Host: lhost}, Params: sipmsg.NewParams()}
	from.Params.Add("tag", sipmsg.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sipmsg.ToHeader{Address: sipmsg.Uri{Scheme: "sip", User: user, Host: host}, Params: sipmsg.NewParams()})
	req.AppendHeader(sipmsg.NewHeader("Event", CheckSyncEvent))
	req.AppendHeader(sipmsg.NewHeader("Subscription-State", "terminated"))
	return req, nil
}

func splitAddr(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("address %q: bad port", addr)
	}
	return h, n, nil
}

// localFor returns the local IP the kernel would use to reach addr (a UDP
// "connect" sends no packet).
func localFor(addr string) (string, error) {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// NotSentNeverFetched is why a phone that never fetched its config gets no
// check-sync: until its first config sets sip.notify_reboot_enable = 0, a
// Yealink reboots on every check-sync.
const NotSentNeverFetched = "not sent: the phone has never fetched its config (a phone that was never provisioned reboots on check-sync; it fetches its config by itself when it boots)"

// Notify tells the phone to sync now — a check-sync NOTIFY, or Trigger —
// and records the outcome (it is what `provbox resync` calls). It returns
// the result recorded.
func (s *Server) Notify(ctx context.Context, mac string) (appliance.NotifyResult, error) {
	t, err := s.Services.Sync.Target(ctx, mac)
	if err != nil {
		return appliance.NotifyResult{}, err
	}
	return s.notify(ctx, t)
}

// notify tells one phone, as the sync loop read it, to sync.
func (s *Server) notify(ctx context.Context, t *appliance.SyncTarget) (appliance.NotifyResult, error) {
	res := appliance.NotifyResult{MAC: t.MAC, Version: t.ConfigVersion}
	if !t.HasFetched {
		// Not recorded: the phone's state and last NOTIFY stay as they are.
		res.Reason = NotSentNeverFetched
		return res, nil
	}
	if t.SIPAddress == "" {
		res.Reason = "no SIP address known yet (the phone has not fetched its config, sent a PnP SUBSCRIBE or taken a DHCP lease)"
		return res, s.Services.Sync.RecordNotify(ctx, res)
	}
	start := time.Now()
	res = s.tell(ctx, t)
	if ctx.Err() != nil {
		return res, nil // provbox is stopping: the phone did not fail to answer
	}
	s.Logger.Info("sync triggered", "via", res.Via, "mac", t.MAC, "to", t.SIPAddress, "result", res.Text(), "ms", time.Since(start).Milliseconds())
	return res, s.Services.Sync.RecordNotify(context.WithoutCancel(ctx), res)
}

// tell tries the configured trigger, then the other one when the phone
// refused or did not answer it: after sip.sync_trigger changed, phones
// still hold a config made for the other trigger until they fetch the
// new one (action_uri configs keep trust_ctrl on, which drops provbox's
// NOTIFY; notify configs leave the Action URI closed).
func (s *Server) tell(ctx context.Context, t *appliance.SyncTarget) appliance.NotifyResult {
	first, other := s.checkSync, s.Fallback
	if s.Trigger != nil {
		first, other = s.Trigger, s.checkSync
	}
	res := first(ctx, t)
	if accepted(res) || other == nil || ctx.Err() != nil {
		return res
	}
	if alt := other(ctx, t); accepted(alt) {
		return alt
	}
	return res
}

func accepted(r appliance.NotifyResult) bool { return r.Status >= 200 && r.Status < 300 }

// checkSync sends the check-sync NOTIFY.
func (s *Server) checkSync(ctx context.Context, t *appliance.SyncTarget) appliance.NotifyResult {
	user := t.User
	if user == "" {
		user = t.MAC
	}
	res := appliance.NotifyResult{MAC: t.MAC, Version: t.ConfigVersion, Via: appliance.TriggerNotify}
	res.Status, res.Reason = s.send(ctx, user, t.SIPAddress)
	return res
}

// send transmits the NOTIFY (retransmitted by the client transaction as
// RFC 3261 says for UDP: 0.5 s, 1 s, 2 s, 4 s…) and waits for the final
// answer, at most NotifyTimeout. Status 0 means no answer.
func (s *Server) send(ctx context.Context, user, addr string) (int, string) {
	lip, err := localFor(addr)
	if err != nil {
		return 0, "cannot reach " + addr + ": " + err.Error()
	}
	req, err := buildCheckSync(user, addr, net.JoinHostPort(lip, strconv.Itoa(s.port)))
	if err != nil {
		return 0, err.Error()
	}
	req.Laddr = s.laddr // leave from the listening socket
	ctx, cancel := context.WithTimeout(ctx, s.NotifyTimeout)
	defer cancel()
	resp, err := s.client.Do(ctx, req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sipmsg.ErrTransactionTimeout) {
			return 0, ""
		}
		if ctx.Err() != nil {
			return 0, ""
		}
		return 0, "send failed: " + err.Error()
	}
	return resp.StatusCode, resp.Reason
}
