package job

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// matchPodFailurePolicy matches a failed pod against the Job's pod failure
// policy, first rule first. It returns the Job failure message of a FailJob
// rule, whether the failure counts towards backoffLimit (an Ignore rule's
// does not), and the matched action. Without a match the failure counts.
//
// FailIndex counts the failure; failing the index itself belongs to
// backoffLimitPerIndex, which skiff does not do yet.
func matchPodFailurePolicy(policy *batchv1.PodFailurePolicy, pod *corev1.Pod) (*string, bool, *batchv1.PodFailurePolicyAction) {
	if policy == nil {
		return nil, true, nil
	}
	for i, rule := range policy.Rules {
		action := rule.Action
		var failJobMsg string
		switch {
		case rule.OnExitCodes != nil:
			cs := matchOnExitCodes(&pod.Status, rule.OnExitCodes)
			if cs == nil {
				continue
			}
			failJobMsg = fmt.Sprintf("Container %s for pod %s/%s failed with exit code %v matching %v rule at index %d",
				cs.Name, pod.Namespace, pod.Name, cs.State.Terminated.ExitCode, action, i)
		case rule.OnPodConditions != nil:
			cond := matchOnPodConditions(&pod.Status, rule.OnPodConditions)
			if cond == nil {
				continue
			}
			failJobMsg = fmt.Sprintf("Pod %s/%s has condition %v matching %v rule at index %d",
				pod.Namespace, pod.Name, cond.Type, action, i)
		default:
			continue
		}
		switch action {
		case batchv1.PodFailurePolicyActionIgnore:
			return nil, false, &action
		case batchv1.PodFailurePolicyActionFailIndex, batchv1.PodFailurePolicyActionCount:
			return nil, true, &action
		case batchv1.PodFailurePolicyActionFailJob:
			return &failJobMsg, true, &action
		}
	}
	return nil, true, nil
}

// matchOnExitCodes returns the first terminated container (then init
// container) whose non-zero exit code the requirement matches.
func matchOnExitCodes(st *corev1.PodStatus, req *batchv1.PodFailurePolicyOnExitCodesRequirement) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{st.ContainerStatuses, st.InitContainerStatuses} {
		for i := range list {
			cs := &list[i]
			term := cs.State.Terminated
			if term == nil || term.ExitCode == 0 || req.ContainerName != nil && *req.ContainerName != cs.Name {
				continue
			}
			in := slices.Contains(req.Values, term.ExitCode)
			if req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && in ||
				req.Operator == batchv1.PodFailurePolicyOnExitCodesOpNotIn && !in {
				return cs
			}
		}
	}
	return nil
}

func matchOnPodConditions(st *corev1.PodStatus, patterns []batchv1.PodFailurePolicyOnPodConditionsPattern) *corev1.PodCondition {
	for i := range st.Conditions {
		for _, p := range patterns {
			if st.Conditions[i].Type == p.Type && st.Conditions[i].Status == p.Status {
				return &st.Conditions[i]
			}
		}
	}
	return nil
}

// failJobMessage is the message of the first failed pod a FailJob rule
// matches.
func failJobMessage(job *batchv1.Job, pods []*corev1.Pod) *string {
	if job.Spec.PodFailurePolicy == nil {
		return nil
	}
	for _, p := range pods {
		if isPodFailed(p, job) {
			if msg, _, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); msg != nil {
				return msg
			}
		}
	}
	return nil
}

// countedFailures is how many of the failed pods count towards backoffLimit.
func countedFailures(job *batchv1.Job, failed []*corev1.Pod) int {
	n := len(failed)
	if job.Spec.PodFailurePolicy != nil {
		for _, p := range failed {
			if _, counts, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); !counts {
				n--
			}
		}
	}
	return n
}

// matchSuccessPolicy reports whether an Indexed Job's succeeded indexes meet
// one of its success policy rules, and the message for SuccessCriteriaMet.
func matchSuccessPolicy(policy *batchv1.SuccessPolicy, completions int32, succeeded intervals) (string, bool) {
	if policy == nil || len(succeeded) == 0 {
		return "", false
	}
	for i, rule := range policy.Rules {
		if rule.SucceededIndexes != nil {
			required := parseIndexes(*rule.SucceededIndexes, int(completions))
			if len(required) == 0 {
				continue
			}
			if matchSucceededIndexes(required, succeeded, rule.SucceededCount) {
				return fmt.Sprintf("Matched rules at index %d", i), true
			}
		} else if rule.SucceededCount != nil && succeeded.total() >= int(*rule.SucceededCount) {
			return fmt.Sprintf("Matched rules at index %d", i), true
		}
	}
	return "", false
}

// matchSucceededIndexes reports whether all the rule's indexes succeeded, or
// at least succeededCount of them.
func matchSucceededIndexes(rule, succeeded intervals, succeededCount *int32) bool {
	contains, r, s := 0, 0, 0
	for r < len(rule) && s < len(succeeded) {
		if overlap := min(rule[r].last, succeeded[s].last) - max(rule[r].first, succeeded[s].first) + 1; overlap > 0 {
			contains += overlap
		}
		switch {
		case succeeded[s].last < rule[r].last:
			s++
		case succeeded[s].last > rule[r].last:
			r++
		default:
			s++
			r++
		}
	}
	return contains == rule.total() || succeededCount != nil && contains >= int(*succeededCount)
}
