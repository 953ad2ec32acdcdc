//go:build !linux

package reference

import (
	"net"
	"time"
)

// setUserTimeout is a no-op where TCP_USER_TIMEOUT does not exist; write deadlines still
// bound every write there.
func setUserTimeout(*net.TCPConn, time.Duration) error { return nil }
