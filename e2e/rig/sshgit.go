package rig

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHGitServer serves the repositories of a GitServer over SSH, with
// git-upload-pack behind a real SSH server, to one deploy key.
type SSHGitServer struct {
	Addr string
	// KnownHosts is the known_hosts line of this server's host key.
	KnownHosts string
	// DeployKey is the PEM private key the server accepts.
	DeployKey string
	root      string
	hostKey   ssh.PublicKey
}

// KnownHostsAs is a known_hosts line claiming this server's host key for
// another address: what a spoofed server would present.
func (s *SSHGitServer) KnownHostsAs(addr string) string {
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, s.hostKey)
}

// StartSSHGitServer serves root's repositories until the test ends.
func StartSSHGitServer(t testing.TB, root string) *SSHGitServer {
	t.Helper()
	hostSigner, _ := newKey(t)
	clientSigner, clientPEM := newKey(t)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(clientSigner.PublicKey().Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, errUnknownKey
		},
	}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &SSHGitServer{
		Addr:       ln.Addr().String(),
		KnownHosts: knownhosts.Line([]string{knownhosts.Normalize(ln.Addr().String())}, hostSigner.PublicKey()),
		DeployKey:  string(clientPEM),
		root:       root,
		hostKey:    hostSigner.PublicKey(),
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c, cfg)
		}
	}()
	return s
}

// URL is the ssh:// clone URL of a repository.
func (s *SSHGitServer) URL(name string) string { return "ssh://git@" + s.Addr + "/" + name + ".git" }

type sshError string

func (e sshError) Error() string { return string(e) }

const errUnknownKey = sshError("unknown key")

func newKey(t testing.TB) (ssh.Signer, []byte) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

func (s *SSHGitServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go s.session(ch, creqs)
	}
}

// session runs the one git command a session asks for.
func (s *SSHGitServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(false, nil)
			continue
		}
		cmdline := string(req.Payload[4:]) // a uint32 length, then the command
		name, arg, _ := strings.Cut(cmdline, " ")
		if name != "git-upload-pack" {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		path := filepath.Join(s.root, filepath.Clean("/"+strings.Trim(arg, "'\"")))
		cmd := exec.Command("git-upload-pack", path)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		code := uint32(0)
		if err := cmd.Run(); err != nil {
			code = 1
		}
		status := make([]byte, 4)
		binary.BigEndian.PutUint32(status, code)
		_, _ = ch.SendRequest("exit-status", false, status)
		return
	}
}
