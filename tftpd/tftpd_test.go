package tftpd_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pin/tftp/v3"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/tftpd"
)

// memFiles is an in-memory resolver recording what it was asked.
type memFiles struct {
	mu    sync.Mutex
	files map[string][]byte
	asked []appliance.FileRequest
}

func (m *memFiles) ResolveFile(ctx context.Context, req appliance.FileRequest) (*appliance.ServedFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asked = append(m.asked, req)
	if req.Name == "001565000001.cfg" {
		return nil, appliance.Errorf(appliance.EUNAUTHORIZED, "file", "needs the secret")
	}
	if req.Name == "refused.cfg" {
		return nil, appliance.Errorf(appliance.ETOOMANY, "file", "refused")
	}
	b, ok := m.files[req.Name]
	if !ok {
		return nil, appliance.Errorf(appliance.ENOTFOUND, "file", "not found")
	}
	return &appliance.ServedFile{Name: req.Name, Size: int64(len(b)), Content: bytes.NewReader(b)}, nil
}

func (m *memFiles) RenderFile(ctx context.Context, mac, name string) ([]byte, error) {
	return nil, appliance.Errorf(appliance.ENOTFOUND, "file", "not here")
}

func TestServer(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 KB
	files := &memFiles{files: map[string][]byte{"001565aabbcc.cfg": []byte("#!version:1.0.0.1\nx = 1\n"), "fw.rom": big}}
	s := &tftpd.Server{Addr: "127.0.0.1:0", Files: files, Timeout: 500 * time.Millisecond}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", s.Port())
	for _, tc := range []struct {
		name    string
		file    string
		blksize int
		want    []byte
		err     string
	}{
		{"config", "001565aabbcc.cfg", 0, files.files["001565aabbcc.cfg"], ""},
		{"firmware blksize 1468", "fw.rom", 1468, big, ""},
		{"firmware blksize 512", "fw.rom", 512, big, ""},
		{"unknown", "001565000000.cfg", 0, nil, "file not found"},
		{"refused", "refused.cfg", 0, nil, "too many requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tftp.NewClient(addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetTimeout(time.Second)
			if tc.blksize > 0 {
				c.SetBlockSize(tc.blksize)
			}
			c.RequestTSize(true)
			wt, err := c.Receive(tc.file, "octet")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n, ok := wt.(tftp.IncomingTransfer).Size(); !ok || n != int64(len(tc.want)) {
				t.Fatalf("tsize %d %v", n, ok)
			}
			var buf bytes.Buffer
			if _, err := wt.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), tc.want) {
				t.Fatalf("got %d bytes, want %d", buf.Len(), len(tc.want))
			}
		})
	}
	files.mu.Lock()
	first := files.asked[0]
	files.mu.Unlock()
	if first.IP != "127.0.0.1" || first.Source != "tftp" || first.Name != "001565aabbcc.cfg" {
		t.Fatalf("request %+v", first)
	}
	// Writes are refused.
	c, _ := tftp.NewClient(addr)
	c.SetTimeout(time.Second)
	rf, err := c.Send("upload.cfg", "octet")
	if err == nil {
		_, err = rf.ReadFrom(strings.NewReader("x"))
	}
	if err == nil || !strings.Contains(err.Error(), "does not support write") {
		t.Fatalf("write: %v", err)
	}
}

func TestServer_ConcurrentFetches(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 5120)
	files := &memFiles{files: map[string][]byte{"a.cfg": body}}
	s := &tftpd.Server{Addr: "127.0.0.1:0", Files: files}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", s.Port())
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _ := tftp.NewClient(addr)
			wt, err := c.Receive("a.cfg", "octet")
			if err != nil {
				errs <- err
				return
			}
			var buf bytes.Buffer
			if _, err := wt.WriteTo(&buf); err != nil || buf.Len() != len(body) {
				errs <- fmt.Errorf("got %d bytes: %v", buf.Len(), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A file that needs the phone's secret is refused with TFTP error 2,
// access violation (RFC 1350), as the first answer the client gets.
func TestServer_AccessViolation(t *testing.T) {
	files := &memFiles{files: map[string][]byte{}}
	s := &tftpd.Server{Addr: "127.0.0.1:0", Files: files, Timeout: 500 * time.Millisecond}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rrq := append([]byte{0, 1}, "001565000001.cfg\x00octet\x00"...)
	if _, err := c.WriteTo(rrq, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.Port()}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 600)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 || !bytes.Equal(buf[:4], []byte{0, 5, 0, 2}) || !strings.Contains(string(buf[4:n]), "access violation") {
		t.Fatalf("first answer % x %q, want ERROR code 2", buf[:4], buf[4:n])
	}
}
