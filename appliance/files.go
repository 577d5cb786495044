package appliance

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"
)

// FileRequest is a phone asking for a file over HTTP or TFTP.
type FileRequest struct {
	Name   string // the requested path, untrusted
	IP     string // the requester's address
	Source string // "http" or "tftp"
	UA     string // HTTP User-Agent, "" over TFTP
	// HasAuth is set when the request carried HTTP Basic credentials,
	// User and Password (untrusted): a phone proving its secret.
	HasAuth        bool
	User, Password string
	// NoWait asks for an answer from memory only: a request that would
	// wait for the store (a phone not in the cache, a new version, a
	// claim, a fetch to record now, any file but a <mac>.cfg) gets
	// ErrWouldWait, with nothing of it done, and is asked again without
	// NoWait where waiting is fine. The HTTP listener's poll loop asks so:
	// it must not keep the other connections it waits for waiting.
	NoWait bool
}

// ErrWouldWait is the answer to a FileRequest with NoWait that would wait.
var ErrWouldWait = errors.New("the answer would wait for the store")

// ServedFile is a file to send: read it through Reader (Content, or Body
// when the whole file is in memory); call Close when done. A file with
// Body (a phone's rendered <mac>.cfg) may be shared by every request for
// it: read-only.
type ServedFile struct {
	Name    string
	Size    int64
	ModTime time.Time
	Content io.ReadSeeker // positioned at the start; nil when Body holds the file
	Body    []byte        // the whole file when it is in memory
	Phone   *Phone        // set for a known phone's <mac>.cfg
	Version string        // config version of a <mac>.cfg ("" otherwise)
	Closer  io.Closer
}

// Reader returns a reader of the file from its start.
func (f *ServedFile) Reader() io.ReadSeeker {
	if f.Content != nil {
		return f.Content
	}
	return bytes.NewReader(f.Body)
}

// Close releases the file.
func (f *ServedFile) Close() error {
	if f.Closer != nil {
		return f.Closer.Close()
	}
	return nil
}

// FileResolver is the one path from a requested file name to its bytes,
// shared by the HTTP /prov/ handler and the TFTP server. Errors: ENOTFOUND,
// EUNAUTHORIZED (a file that carries a secret, requested without the
// phone's secret; the same for an unknown phone's file), ETOOMANY (the
// address is refused a while), EINTERNAL.
type FileResolver interface {
	ResolveFile(ctx context.Context, req FileRequest) (*ServedFile, error)
	// RenderFile renders a known phone's file (name "" means <mac>.cfg)
	// exactly as the phone would get it, without recording a fetch: for
	// previews and `provbox render`. Errors: EINVALID (mac), ENOTFOUND.
	RenderFile(ctx context.Context, mac, name string) ([]byte, error)
}
