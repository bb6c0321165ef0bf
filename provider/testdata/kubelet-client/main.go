// kubelet-client: the real client-go code that the apiserver uses toward a kubelet (remotecommand's SPDY executor,
// portforward's SPDY dialer) and the WebSocket executor kubectl uses, pointed at a kubelet API endpoint directly.
// The provider's integration tests build it and run it against the KubeletServer backed by a fake EdgeStreams.
//
//	kubelet-client exec|ws-exec URL        stdin → the session, its stdout/stderr → ours; exit code as the process's
//	kubelet-client portforward URL PORT     forwards PORT, sends our stdin over one connection, prints what comes back
//
// Env: KC_CERT/KC_KEY client certificate, KC_TOKEN bearer token, KC_TTY=1 for a terminal, KC_RESIZE="WxH,WxH".
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
)

func config(u *url.URL) *rest.Config {
	return &rest.Config{
		Host:            u.Scheme + "://" + u.Host,
		BearerToken:     os.Getenv("KC_TOKEN"),
		TLSClientConfig: rest.TLSClientConfig{Insecure: true, CertFile: os.Getenv("KC_CERT"), KeyFile: os.Getenv("KC_KEY")},
	}
}

type sizes struct{ ch chan *remotecommand.TerminalSize }

func (s sizes) Next() *remotecommand.TerminalSize { return <-s.ch }

func execute(mode, raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg := config(u)
	var exe remotecommand.Executor
	if mode == "ws-exec" {
		exe, err = remotecommand.NewWebSocketExecutor(cfg, "GET", raw)
	} else {
		exe, err = remotecommand.NewSPDYExecutor(cfg, "POST", u)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	q := u.Query()
	opts := remotecommand.StreamOptions{Tty: os.Getenv("KC_TTY") == "1"}
	if q.Get("input") == "1" {
		opts.Stdin = os.Stdin
	}
	if q.Get("output") == "1" {
		opts.Stdout = os.Stdout
	}
	if q.Get("error") == "1" {
		opts.Stderr = os.Stderr
	}
	if r := os.Getenv("KC_RESIZE"); r != "" {
		s := sizes{ch: make(chan *remotecommand.TerminalSize, 16)}
		for _, wh := range strings.Split(r, ",") {
			p := strings.Split(wh, "x")
			w, _ := strconv.Atoi(p[0])
			h, _ := strconv.Atoi(p[1])
			s.ch <- &remotecommand.TerminalSize{Width: uint16(w), Height: uint16(h)}
		}
		opts.TerminalSizeQueue = s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = exe.StreamWithContext(ctx, opts)
	var exitErr utilexec.CodeExitError
	if errors.As(err, &exitErr) {
		fmt.Fprintf(os.Stderr, "exit code %d\n", exitErr.Code)
		return exitErr.Code
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 3
	}
	return 0
}

func forward(raw, port string) int {
	u, err := url.Parse(raw)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	transport, upgrader, err := spdy.RoundTripperFor(config(u))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
	stop := make(chan struct{})
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + port}, stop, ready, io.Discard, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	done := make(chan error, 1)
	go func() { done <- pf.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 3
	}
	ports, _ := pf.GetPorts()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	go func() {
		_, _ = io.Copy(conn, os.Stdin)
		_ = conn.(*net.TCPConn).CloseWrite()
	}()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.Copy(os.Stdout, conn)
	close(stop)
	<-done
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 3
	}
	return 0
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: kubelet-client exec|ws-exec URL | portforward URL PORT")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "exec", "ws-exec":
		os.Exit(execute(os.Args[1], os.Args[2]))
	case "portforward":
		os.Exit(forward(os.Args[2], os.Args[3]))
	}
	os.Exit(2)
}
