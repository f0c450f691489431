# bash completion for pexec and pexec-mpi.
#
# Installed by `make install` as share/bash-completion/completions/pexec (and
# pexec-mpi), where bash-completion finds it; or load it by hand with
#   source completion/pexec.bash
# It completes the options, the values of --input-format, --output-format,
# --progress and -j cores, the subcommands, and plugin names: the ones the
# pexec being completed lists (`pexec plugins`: $PEXEC_PLUGIN_PATH, the
# user's $XDG_DATA_HOME/pexec/plugins, the installed directory), and *.so
# files.

# The plugins the command in $1 finds by bare name.
_pexec_plugin_names()
{
	local cmd=$1
	[[ $cmd == "~/"* ]] && cmd=$HOME/${cmd#"~/"}
	command "$cmd" plugins 2>/dev/null
}

# Plugin names and .so files (and directories, to walk into) for $1.
_pexec_complete_plugin()
{
	local cur=$1 cmd=$2
	if [[ $cur != */* ]]; then
		COMPREPLY+=($(compgen -W "$(_pexec_plugin_names "$cmd")" -- "$cur"))
	fi
	COMPREPLY+=($(compgen -f -X '!*.so' -- "$cur") $(compgen -d -S / -- "$cur"))
	compopt -o nospace 2>/dev/null
	[[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} != */ ]] && compopt +o nospace 2>/dev/null
	return 0
}

_pexec_files()
{
	COMPREPLY+=($(compgen -f -- "$1"))
	compopt -o filenames 2>/dev/null
	return 0
}

_pexec()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev= cmd=${COMP_WORDS[0]} opt= val=
	local options="--plugin --jobs --chunksize --unordered --serial --config --input-format
		--null --output-format --output --drop-null --reduce --fail-fast --timeout
		--retries --memory-limit --max-tasks-per-worker --errors --resume --retry-failed
		--progress --joblog --summary --verbose --quiet --help --version"
	local check_options="--must-fail --config --input-format --help"
	local sub=

	COMPREPLY=()
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	# --opt=value: as one word, or as three where '=' breaks words.
	if [[ $cur == --*=* ]]; then
		opt=${cur%%=*}
		val=${cur#*=}
	elif [[ $cur == = ]] && ((COMP_CWORD > 1)); then
		opt=$prev
		val=
	elif [[ $prev == = ]] && ((COMP_CWORD > 2)); then
		opt=${COMP_WORDS[COMP_CWORD - 2]}
		val=$cur
	elif [[ $prev == -* ]]; then
		opt=$prev
		val=$cur
	fi
	((COMP_CWORD > 1)) && sub=${COMP_WORDS[1]}
	case $sub in
	info|check|new|plugins|list) ;;
	*) sub= ;;
	esac

	case $opt in
	-p|--plugin)
		[[ -z $sub ]] && { _pexec_complete_plugin "$val" "$cmd"; return; } ;;
	--input-format)
		COMPREPLY=($(compgen -W "json ndjson lines nul" -- "$val")); return ;;
	--output-format)
		COMPREPLY=($(compgen -W "json ndjson" -- "$val")); return ;;
	--progress)
		[[ $cur == --progress=* || $cur == = || $prev == = ]] &&
			{ COMPREPLY=($(compgen -W "auto plain" -- "$val")); return; } ;;
	-j|--jobs)
		COMPREPLY=($(compgen -W "cores 100% 50% +1 -1" -- "$val")); return ;;
	-o|--output|--errors|--joblog|--summary|--must-fail)
		_pexec_files "$val"; return ;;
	--config|--chunksize|--timeout|--retries|--memory-limit|--max-tasks-per-worker)
		return ;;
	esac

	case $sub in
	plugins)
		return ;;
	list)
		[[ $cur == -* ]] && COMPREPLY=($(compgen -W "--json --help" -- "$cur"))
		return ;;
	new)
		return ;;
	info|check)
		if [[ $cur == -* ]]; then
			[[ $sub == check ]] && COMPREPLY=($(compgen -W "$check_options" -- "$cur")) ||
				COMPREPLY=($(compgen -W "--help" -- "$cur"))
		elif ((COMP_CWORD == 2)); then
			_pexec_complete_plugin "$cur" "$cmd"
		elif [[ $sub == check ]]; then
			_pexec_files "$cur"
		fi
		return ;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$options -p -j -o -0 -v -q -h -V" -- "$cur"))
		[[ ${#COMPREPLY[@]} -eq 1 && $cur == --* &&
			" --input-format --output-format --progress " == *" ${COMPREPLY[0]} "* ]] &&
			{ [[ ${COMPREPLY[0]} == --progress ]] || COMPREPLY[0]+="="; compopt -o nospace 2>/dev/null; }
		return
	fi
	if ((COMP_CWORD == 1)); then
		COMPREPLY=($(compgen -W "info check new plugins list" -- "$cur"))
	fi
	_pexec_files "$cur"
}

complete -F _pexec pexec pexec-mpi
