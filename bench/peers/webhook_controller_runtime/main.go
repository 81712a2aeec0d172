// The Go side of the webhook latency benchmark (bench/webhook.bench.ts): the pod policy of
// examples/webhook/pod-policy.ts on controller-runtime's webhook server (TLS from a cert dir, reloaded by
// its certwatcher), one validating and one mutating path. It prints "listening" once it serves.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

const (
	reviewedLabel = "policy.capstan.dev/reviewed"
	injectLabel   = "sidecar.capstan.dev/inject"
	sidecarName   = "capstan-sidecar"
)

func problem(pod *corev1.Pod, c *corev1.Container) string {
	sc := c.SecurityContext
	if sc != nil && sc.Privileged != nil && *sc.Privileged {
		return fmt.Sprintf("container %s is privileged", c.Name)
	}
	if sc != nil && sc.AllowPrivilegeEscalation != nil && *sc.AllowPrivilegeEscalation {
		return fmt.Sprintf("container %s allows privilege escalation", c.Name)
	}
	var runAsUser *int64
	if sc != nil && sc.RunAsUser != nil {
		runAsUser = sc.RunAsUser
	} else if pod.Spec.SecurityContext != nil {
		runAsUser = pod.Spec.SecurityContext.RunAsUser
	}
	if runAsUser != nil && *runAsUser == 0 {
		return fmt.Sprintf("container %s runs as root (runAsUser 0)", c.Name)
	}
	return ""
}

func main() {
	port := flag.Int("port", 9443, "HTTPS port")
	certDir := flag.String("cert-dir", "", "folder with tls.crt and tls.key")
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	decoder := admission.NewDecoder(scheme)

	srv := webhook.NewServer(webhook.Options{
		Host:     "127.0.0.1",
		Port:     *port,
		CertDir:  *certDir,
		CertName: "tls.crt",
		KeyName:  "tls.key",
	})
	srv.Register("/validate--v1-pod", &admission.Webhook{Handler: admission.HandlerFunc(
		func(ctx context.Context, req admission.Request) admission.Response {
			pod := &corev1.Pod{}
			if err := decoder.Decode(req, pod); err != nil {
				return admission.Errored(http.StatusBadRequest, err)
			}
			for i := range pod.Spec.InitContainers {
				if p := problem(pod, &pod.Spec.InitContainers[i]); p != "" {
					return admission.Denied(p + ": refused by pod-policy")
				}
			}
			for i := range pod.Spec.Containers {
				if p := problem(pod, &pod.Spec.Containers[i]); p != "" {
					return admission.Denied(p + ": refused by pod-policy")
				}
			}
			return admission.Allowed("")
		})})
	srv.Register("/mutate--v1-pod", &admission.Webhook{Handler: admission.HandlerFunc(
		func(ctx context.Context, req admission.Request) admission.Response {
			pod := &corev1.Pod{}
			if err := decoder.Decode(req, pod); err != nil {
				return admission.Errored(http.StatusBadRequest, err)
			}
			if pod.Labels == nil {
				pod.Labels = map[string]string{}
			}
			pod.Labels[reviewedLabel] = "true"
			if pod.Labels[injectLabel] == "true" {
				no := false
				nobody := int64(65534)
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
					Name:            sidecarName,
					Image:           "busybox:local",
					Command:         []string{"sh", "-c", "echo sidecar up; exec sleep 2147483647"},
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no, RunAsUser: &nobody},
				})
			}
			marshaled, err := json.Marshal(pod)
			if err != nil {
				return admission.Errored(http.StatusInternalServerError, err)
			}
			return admission.PatchResponseFromRaw(req.Object.Raw, marshaled)
		})})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		// Announce once a TLS handshake succeeds.
		for ctx.Err() == nil {
			conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", *port), &tls.Config{InsecureSkipVerify: true})
			if err == nil {
				conn.Close()
				fmt.Println("listening")
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
