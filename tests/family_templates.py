"""Chat templates in the layout of each model family, written for the tests from the families'
published prompt formats (not copied from any model repository).

``HERMES_TOOLS`` is ChatML with Hermes/Qwen2.5-style tools: the tool list in the system turn,
calls as ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``, results in a "tool" turn
wrapped in ``<tool_response>``. The tests put it on the default model (``smollm2-tools``) so that
every API's tool path runs through a real model.

The others are the layouts of the families people run for reasoning and tools: ``QWEN3``,
``QWEN3_CODER``, ``LLAMA31``, ``MISTRAL`` (v7, with its 9-character call ids),
``MISTRAL_V11``, ``GPT_OSS`` (harmony) and ``DEEPSEEK_R1``. ``FAMILIES`` pairs each with its
special tokens and end-of-turn token, and ``tests.tinymodel.write_family_model`` writes a tiny
GGUF that carries them, so the real engine reads a family's prompt as the family's models do.
"""

from __future__ import annotations

from typing import NamedTuple

HERMES_TOOLS = (
    "{% if tools %}"
    "<|im_start|>system\n"
    "{% if messages[0].role == 'system' %}{{ messages[0].content }}\n\n{% endif %}"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
    "{% for tool in tools %}\n{{ tool | tojson }}{% endfor %}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
    "{% elif messages[0].role == 'system' %}"
    "<|im_start|>system\n{{ messages[0].content }}<|im_end|>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message.role == 'system' and loop.first %}"
    "{% elif message.role == 'assistant' and message.tool_calls %}"
    "<|im_start|>assistant\n{% if message.content %}{{ message.content }}\n{% endif %}"
    "{% for call in message.tool_calls %}"
    "<tool_call>\n{\"name\": \"{{ call.function.name }}\", \"arguments\": "
    "{{ call.function.arguments | tojson }}}\n</tool_call>\n"
    "{% endfor %}<|im_end|>\n"
    "{% elif message.role == 'tool' %}"
    "<|im_start|>user\n<tool_response>\n{{ message.content }}\n</tool_response><|im_end|>\n"
    "{% else %}"
    "<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# The templates below are written with whitespace control on every tag ({%- / {{-), so only the
# quoted strings reach the prompt: what a family's layout needs is spelled out in one place each.

# Qwen3: ChatML, Hermes tools in the system turn, <think> kept only after the last user turn,
# and enable_thinking=false pre-filling an empty think block.
QWEN3 = r"""
{%- macro arguments_json(arguments) %}
    {%- if arguments is string %}{{- arguments }}{%- else %}{{- arguments | tojson }}{%- endif %}
{%- endmacro %}
{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}{{- messages[0].content + '\n\n' }}{%- endif %}
    {{- '# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' }}
    {{- 'You are provided with function signatures within <tools></tools> XML tags:\n<tools>' }}
    {%- for tool in tools %}{{- '\n' + tool | tojson }}{%- endfor %}
    {{- '\n</tools>\n\nFor each function call, return a json object with function name and '
        'arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n'
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(last_user=-1) %}
{%- for message in messages %}
    {%- if message.role == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.role == 'system' %}
        {%- if not loop.first %}{{- raise_exception('System message must be at the beginning.') }}{%- endif %}
    {%- elif message.role == 'user' %}
        {{- '<|im_start|>user\n' + message.content + '<|im_end|>\n' }}
    {%- elif message.role == 'assistant' %}
        {%- set content = message.content or '' %}
        {%- set reasoning = message.reasoning_content or '' %}
        {%- if '</think>' in content %}
            {%- set reasoning = content.split('</think>')[0].split('<think>')[-1] %}
            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
        {%- endif %}
        {{- '<|im_start|>assistant\n' }}
        {%- if reasoning and loop.index0 > ns.last_user %}
            {{- '<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' }}
        {%- endif %}
        {{- content }}
        {%- for call in message.tool_calls or [] %}
            {%- set fn = call.function if call.function is defined else call %}
            {%- if content or not loop.first %}{{- '\n' }}{%- endif %}
            {{- '<tool_call>\n{"name": "' + fn.name + '", "arguments": ' }}
            {{- arguments_json(fn.arguments) + '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}
        {{- '\n<tool_response>\n' + message.content + '\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\n' }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\n\n</think>\n\n' }}{%- endif %}
{%- endif %}
"""

# Qwen3-Coder: ChatML with the tools described in XML and calls written as
# <tool_call><function=NAME><parameter=P>V</parameter></function></tool_call>.
QWEN3_CODER = r"""
{%- macro parameters_xml(schema) %}
    {%- for name, spec in (schema.properties or {}).items() %}
        {{- '\n<parameter>\n<name>' + name + '</name>' }}
        {%- if spec.type is defined %}
            {{- '\n<type>' + (spec.type if spec.type is string else spec.type | tojson) + '</type>' }}
        {%- endif %}
        {%- if spec.description is defined %}{{- '\n<description>' + spec.description + '</description>' }}{%- endif %}
        {{- '\n</parameter>' }}
    {%- endfor %}
    {%- if schema.required is defined %}{{- '\n<required>' + schema.required | tojson + '</required>' }}{%- endif %}
{%- endmacro %}
{%- if messages[0].role == 'system' %}
    {%- set system_message = messages[0].content %}
{%- else %}
    {%- set system_message = 'You are Qwen, a helpful AI assistant that can interact with a computer to solve tasks.' if tools else '' %}
{%- endif %}
{%- if system_message or tools %}
    {{- '<|im_start|>system\n' + system_message }}
    {%- if tools %}
        {{- '\n\n# Tools\n\nYou have access to the following functions:\n\n<tools>' }}
        {%- for tool in tools %}
            {%- set fn = tool.function if tool.function is defined else tool %}
            {{- '\n<function>\n<name>' + fn.name + '</name>' }}
            {%- if fn.description is defined %}{{- '\n<description>' + fn.description + '</description>' }}{%- endif %}
            {{- '\n<parameters>' + parameters_xml(fn.parameters or {}) + '\n</parameters>\n</function>' }}
        {%- endfor %}
        {{- '\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n'
            '<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n'
            '</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n'
            '- Function calls MUST follow the specified format: an inner <function=...></function> '
            'block must be nested within <tool_call></tool_call> XML tags\n'
            '- Required parameters MUST be specified\n</IMPORTANT>' }}
    {%- endif %}
    {{- '<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'system' %}
        {%- if not loop.first %}{{- raise_exception('System message must be at the beginning.') }}{%- endif %}
    {%- elif message.role == 'user' %}
        {{- '<|im_start|>user\n' + message.content + '<|im_end|>\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '<|im_start|>assistant\n' + (message.content or '') }}
        {%- for call in message.tool_calls or [] %}
            {%- set fn = call.function if call.function is defined else call %}
            {%- if message.content or not loop.first %}{{- '\n' }}{%- endif %}
            {{- '<tool_call>\n<function=' + fn.name + '>\n' }}
            {%- for name, value in (fn.arguments or {}).items() %}
                {{- '<parameter=' + name + '>\n' }}
                {{- value if value is string else value | tojson }}
                {{- '\n</parameter>\n' }}
            {%- endfor %}
            {{- '</function>\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user\n' }}{%- endif %}
        {{- '<tool_response>\n' + message.content + '\n</tool_response>\n' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\n' }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}
"""

# Llama 3.1: header-delimited turns ending in <|eot_id|>, the tools as JSON in the first user
# turn, calls as {"name", "parameters"}, results in the ipython role, built-in tools through
# <|python_tag|> ending in <|eom_id|>.
LLAMA31 = r"""
{{- bos_token }}
{%- set date_string = date_string if date_string is defined else '26 Jul 2024' %}
{%- set builtins = builtin_tools if builtin_tools is defined else [] %}
{%- set in_user_turn = tools_in_user_message if tools_in_user_message is defined else true %}
{%- macro tool_instructions() %}
    {{- 'Given the following functions, please respond with a JSON for a function call with its '
        'proper arguments that best answers the given prompt.\n\n'
        'Respond in the format {"name": function name, "parameters": dictionary of argument name '
        'and its value}. Do not use variables.\n\n' }}
    {%- for tool in tools %}{{- tool | tojson(indent=4) + '\n\n' }}{%- endfor %}
{%- endmacro %}
{%- if messages[0].role == 'system' %}
    {%- set system_message = messages[0].content %}
    {%- set turns = messages[1:] %}
{%- else %}
    {%- set system_message = '' %}
    {%- set turns = messages %}
{%- endif %}
{{- '<|start_header_id|>system<|end_header_id|>\n\n' }}
{%- if tools or builtins %}{{- 'Environment: ipython\n' }}{%- endif %}
{%- if builtins %}{{- 'Tools: ' + builtins | join(', ') + '\n\n' }}{%- endif %}
{{- 'Cutting Knowledge Date: December 2023\nToday Date: ' + date_string + '\n\n' }}
{%- if tools and not in_user_turn %}{{- tool_instructions() }}{%- endif %}
{{- system_message + '<|eot_id|>' }}
{%- set ns = namespace(tools_told=not (tools and in_user_turn)) %}
{%- for message in turns %}
    {%- if message.role == 'user' %}
        {{- '<|start_header_id|>user<|end_header_id|>\n\n' }}
        {%- if not ns.tools_told %}{{- tool_instructions() }}{%- set ns.tools_told = true %}{%- endif %}
        {{- message.content + '<|eot_id|>' }}
    {%- elif message.role == 'assistant' and message.tool_calls %}
        {%- if message.tool_calls | length != 1 %}
            {{- raise_exception('This model only supports single tool-calls at once!') }}
        {%- endif %}
        {%- set call = message.tool_calls[0] %}
        {%- set fn = call.function if call.function is defined else call %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
        {%- if fn.name in builtins %}
            {{- '<|python_tag|>' + fn.name + '.call(' }}
            {%- for name, value in fn.arguments.items() %}
                {{- name + '="' + (value if value is string else value | tojson) + '"' }}
                {%- if not loop.last %}{{- ', ' }}{%- endif %}
            {%- endfor %}
            {{- ')<|eom_id|>' }}
        {%- else %}
            {{- '{"name": "' + fn.name + '", "parameters": ' + fn.arguments | tojson + '}<|eot_id|>' }}
        {%- endif %}
    {%- elif message.role == 'tool' or message.role == 'ipython' %}
        {{- '<|start_header_id|>ipython<|end_header_id|>\n\n' }}
        {%- if message.content is mapping or (message.content is iterable and message.content is not string) %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- '<|eot_id|>' }}
    {%- else %}
        {{- '<|start_header_id|>' + message.role + '<|end_header_id|>\n\n' + message.content | trim + '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}
"""

# Mistral (v7 tokenizer): [SYSTEM_PROMPT], the tools before the last [INST], calls as a JSON list
# after [TOOL_CALLS] whose ids must be 9 alphanumerics, results in [TOOL_RESULTS] with call_id.
MISTRAL = r"""
{%- macro check_id(call_id) %}
    {%- if call_id is not string or call_id | length != 9 or not call_id.isalnum() %}
        {{- raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}
    {%- endif %}
{%- endmacro %}
{{- bos_token }}
{%- if messages[0].role == 'system' %}
    {{- '[SYSTEM_PROMPT]' + messages[0].content + '[/SYSTEM_PROMPT]' }}
    {%- set turns = messages[1:] %}
{%- else %}
    {%- set turns = messages %}
{%- endif %}
{%- set ns = namespace(last_user=-1) %}
{%- for message in turns %}
    {%- if message.role == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}
{%- endfor %}
{%- for message in turns %}
    {%- if message.role == 'user' %}
        {%- if tools and loop.index0 == ns.last_user %}
            {{- '[AVAILABLE_TOOLS]' + tools | tojson + '[/AVAILABLE_TOOLS]' }}
        {%- endif %}
        {{- '[INST]' + message.content + '[/INST]' }}
    {%- elif message.role == 'assistant' and message.tool_calls %}
        {{- (message.content or '') + '[TOOL_CALLS][' }}
        {%- for call in message.tool_calls %}
            {{- check_id(call.id) }}
            {%- set fn = call.function if call.function is defined else call %}
            {{- '{"name": "' + fn.name + '", "arguments": ' + fn.arguments | tojson + ', "id": "' + call.id + '"}' }}
            {%- if not loop.last %}{{- ', ' }}{%- endif %}
        {%- endfor %}
        {{- ']' + eos_token }}
    {%- elif message.role == 'assistant' %}
        {{- message.content + eos_token }}
    {%- elif message.role == 'tool' %}
        {{- check_id(message.tool_call_id) }}
        {{- '[TOOL_RESULTS]' + {'content': message.content, 'call_id': message.tool_call_id} | tojson + '[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception('Only user, assistant and tool roles are supported after the system prompt!') }}
    {%- endif %}
{%- endfor %}
"""

# Mistral (v11 tokenizer, as Mistral Small 3.2 and Devstral): each call as
# [TOOL_CALLS]name[ARGS]{...}, results as bare [TOOL_RESULTS]...[/TOOL_RESULTS], no call ids.
MISTRAL_V11 = r"""
{{- bos_token }}
{%- if messages[0].role == 'system' %}
    {{- '[SYSTEM_PROMPT]' + messages[0].content + '[/SYSTEM_PROMPT]' }}
    {%- set turns = messages[1:] %}
{%- else %}
    {%- set turns = messages %}
{%- endif %}
{%- set ns = namespace(last_user=-1) %}
{%- for message in turns %}
    {%- if message.role == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}
{%- endfor %}
{%- for message in turns %}
    {%- if message.role == 'user' %}
        {%- if tools and loop.index0 == ns.last_user %}
            {{- '[AVAILABLE_TOOLS]' + tools | tojson + '[/AVAILABLE_TOOLS]' }}
        {%- endif %}
        {{- '[INST]' + message.content + '[/INST]' }}
    {%- elif message.role == 'assistant' %}
        {{- message.content or '' }}
        {%- for call in message.tool_calls or [] %}
            {%- set fn = call.function if call.function is defined else call %}
            {{- '[TOOL_CALLS]' + fn.name + '[ARGS]' }}
            {{- fn.arguments if fn.arguments is string else fn.arguments | tojson }}
        {%- endfor %}
        {{- eos_token }}
    {%- elif message.role == 'tool' %}
        {{- '[TOOL_RESULTS]' + message.content + '[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception('Only user, assistant and tool roles are supported after the system prompt!') }}
    {%- endif %}
{%- endfor %}
"""

# gpt-oss (the harmony format): system and developer messages, the tools as a TypeScript
# namespace, reasoning in the analysis channel, calls addressed to=functions.NAME ending in
# <|call|>, results from functions.NAME, and a bare <|start|>assistant to generate.
GPT_OSS = r"""
{%- macro typescript(spec) %}
    {%- if spec.enum is defined %}{{- spec.enum | map('tojson') | join(' | ') }}
    {%- elif spec.type == 'string' %}{{- 'string' }}
    {%- elif spec.type == 'integer' or spec.type == 'number' %}{{- 'number' }}
    {%- elif spec.type == 'boolean' %}{{- 'boolean' }}
    {%- elif spec.type == 'array' and spec['items'] is defined %}{{- typescript(spec['items']) + '[]' }}
    {%- elif spec.type == 'array' %}{{- 'any[]' }}
    {%- elif spec.type == 'object' %}{{- 'object' }}
    {%- else %}{{- 'any' }}
    {%- endif %}
{%- endmacro %}
{%- set effort = reasoning_effort if reasoning_effort is defined and reasoning_effort else 'medium' %}
{%- set identity = model_identity if model_identity is defined else 'You are ChatGPT, a large language model trained by OpenAI.' %}
{{- '<|start|>system<|message|>' + identity + '\nKnowledge cutoff: 2024-06\nCurrent date: ' + strftime_now('%Y-%m-%d') }}
{{- '\n\nReasoning: ' + effort + '\n\n# Valid channels: analysis, commentary, final. Channel must be included for every message.' }}
{%- if tools %}{{- "\nCalls to these tools must go to the commentary channel: 'functions'." }}{%- endif %}
{{- '<|end|>' }}
{%- set has_instructions = messages[0].role in ('system', 'developer') %}
{%- if has_instructions or tools %}
    {{- '<|start|>developer<|message|>' }}
    {%- if has_instructions %}
        {{- '# Instructions\n\n' + messages[0].content }}
        {%- if tools %}{{- '\n\n' }}{%- endif %}
    {%- endif %}
    {%- if tools %}
        {{- '# Tools\n\n## functions\n\nnamespace functions {\n\n' }}
        {%- for tool in tools %}
            {%- set fn = tool.function if tool.function is defined else tool %}
            {%- if fn.description %}{{- '// ' + fn.description + '\n' }}{%- endif %}
            {{- 'type ' + fn.name + ' = ' }}
            {%- if fn.parameters and fn.parameters.properties %}
                {{- '(_: {\n' }}
                {%- for name, spec in fn.parameters.properties.items() %}
                    {%- if spec.description %}{{- '// ' + spec.description + '\n' }}{%- endif %}
                    {{- name + ('' if name in (fn.parameters.required or []) else '?') + ': ' + typescript(spec) + ',\n' }}
                {%- endfor %}
                {{- '}) => any;\n\n' }}
            {%- else %}
                {{- '() => any;\n\n' }}
            {%- endif %}
        {%- endfor %}
        {{- '} // namespace functions' }}
    {%- endif %}
    {{- '<|end|>' }}
{%- endif %}
{%- set ns = namespace(last_final=-1, last_tool='') %}
{%- for message in messages %}
    {%- if message.role == 'assistant' and not message.tool_calls %}{%- set ns.last_final = loop.index0 %}{%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.role in ('system', 'developer') %}
        {%- if not loop.first %}{{- raise_exception('System and developer messages must come first.') }}{%- endif %}
    {%- elif message.role == 'user' %}
        {{- '<|start|>user<|message|>' + message.content + '<|end|>' }}
    {%- elif message.role == 'assistant' and message.tool_calls %}
        {%- if message.thinking and loop.index0 > ns.last_final %}
            {{- '<|start|>assistant<|channel|>analysis<|message|>' + message.thinking + '<|end|>' }}
        {%- endif %}
        {%- if message.content %}
            {{- '<|start|>assistant<|channel|>commentary<|message|>' + message.content + '<|end|>' }}
        {%- endif %}
        {%- for call in message.tool_calls %}
            {%- set fn = call.function if call.function is defined else call %}
            {{- '<|start|>assistant to=functions.' + fn.name + '<|channel|>commentary json<|message|>' }}
            {{- (fn.arguments if fn.arguments is string else fn.arguments | tojson) + '<|call|>' }}
            {%- set ns.last_tool = fn.name %}
        {%- endfor %}
    {%- elif message.role == 'assistant' %}
        {{- '<|start|>assistant<|channel|>final<|message|>' + message.content + '<|end|>' }}
    {%- elif message.role == 'tool' %}
        {%- set name = message.tool_name or ns.last_tool %}
        {%- if not name %}{{- raise_exception('A tool result must follow a tool call or name its tool.') }}{%- endif %}
        {{- '<|start|>functions.' + name + ' to=assistant<|channel|>commentary<|message|>' }}
        {{- (message.content if message.content is string else message.content | tojson) + '<|end|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start|>assistant' }}{%- endif %}
"""

# DeepSeek-R1: <｜User｜>/<｜Assistant｜> turns after the BOS, the reasoning of past answers
# dropped, calls and outputs in its tool▁ markers (it takes no tool definitions), and a
# generation prompt that opens <think> itself.
DEEPSEEK_R1 = r"""
{%- set ns = namespace(system='', in_outputs=false) %}
{%- for message in messages %}
    {%- if message.role == 'system' %}
        {%- set ns.system = ns.system + ('\n\n' if ns.system else '') + message.content %}
    {%- endif %}
{%- endfor %}
{{- bos_token + ns.system }}
{%- for message in messages %}
    {%- if message.role != 'tool' and ns.in_outputs %}
        {{- '<｜tool▁outputs▁end｜>' }}
        {%- set ns.in_outputs = false %}
    {%- endif %}
    {%- if message.role == 'user' %}
        {{- '<｜User｜>' + message.content }}
    {%- elif message.role == 'assistant' %}
        {%- set content = message.content or '' %}
        {%- if '</think>' in content %}{%- set content = content.split('</think>')[-1].lstrip('\n') %}{%- endif %}
        {{- '<｜Assistant｜>' + content }}
        {%- if message.tool_calls %}
            {{- '<｜tool▁calls▁begin｜>' }}
            {%- for call in message.tool_calls %}
                {%- set fn = call.function if call.function is defined else call %}
                {{- '<｜tool▁call▁begin｜>function<｜tool▁sep｜>' + fn.name + '\n```json\n' }}
                {{- (fn.arguments if fn.arguments is string else fn.arguments | tojson) + '\n```<｜tool▁call▁end｜>' }}
            {%- endfor %}
            {{- '<｜tool▁calls▁end｜>' }}
        {%- endif %}
        {{- '<｜end▁of▁sentence｜>' }}
    {%- elif message.role == 'tool' %}
        {%- if not ns.in_outputs %}
            {{- '<｜tool▁outputs▁begin｜>' }}
            {%- set ns.in_outputs = true %}
        {%- endif %}
        {{- '<｜tool▁output▁begin｜>' + message.content + '<｜tool▁output▁end｜>' }}
    {%- endif %}
{%- endfor %}
{%- if ns.in_outputs %}{{- '<｜tool▁outputs▁end｜>' }}{%- endif %}
{%- if add_generation_prompt %}{{- '<｜Assistant｜><think>\n' }}{%- endif %}
"""


class Family(NamedTuple):
    """What a tiny model needs to look like one family's models to the engine and the template:
    its chat template, its special tokens ((text, "control" | "user_defined"), as llama.cpp's
    converted GGUFs type them) and the token that ends its turns (the GGUF's EOS)."""

    template: str
    special_tokens: tuple[tuple[str, str], ...]
    eos_token: str


def _control(*texts: str) -> tuple[tuple[str, str], ...]:
    return tuple((text, "control") for text in texts)


def _user_defined(*texts: str) -> tuple[tuple[str, str], ...]:
    return tuple((text, "user_defined") for text in texts)


_CHATML = _control("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Qwen's tool and think tags are added tokens Hugging Face does not mark special, so converted
# GGUFs type them user-defined: they are read and shown even with special tokens off.
_QWEN_TAGS = _user_defined("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")
_MISTRAL_V7 = _control("<s>", "</s>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
                       "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_CALLS]",
                       "[TOOL_RESULTS]", "[/TOOL_RESULTS]")

FAMILIES: dict[str, Family] = {
    "hermes": Family(HERMES_TOOLS, _CHATML + _QWEN_TAGS, "<|im_end|>"),
    "qwen3": Family(QWEN3, _CHATML + _QWEN_TAGS + _user_defined("<think>", "</think>"),
                    "<|im_end|>"),
    "qwen3-coder": Family(QWEN3_CODER, _CHATML + _QWEN_TAGS, "<|im_end|>"),
    "llama3.1": Family(LLAMA31, _control("<|begin_of_text|>", "<|end_of_text|>",
                                         "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                                         "<|eom_id|>", "<|python_tag|>"), "<|eot_id|>"),
    "mistral": Family(MISTRAL, _MISTRAL_V7, "</s>"),
    "mistral-v11": Family(MISTRAL_V11, _MISTRAL_V7 + _control("[ARGS]"), "</s>"),
    "gpt-oss": Family(GPT_OSS, _control("<|startoftext|>", "<|endoftext|>", "<|start|>", "<|end|>",
                                        "<|message|>", "<|channel|>", "<|constrain|>",
                                        "<|return|>", "<|call|>"), "<|return|>"),
    "deepseek-r1": Family(DEEPSEEK_R1, _control("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>")
                          + _user_defined("<｜User｜>", "<｜Assistant｜>", "<think>", "</think>",
                                          "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>",
                                          "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>",
                                          "<｜tool▁sep｜>", "<｜tool▁outputs▁begin｜>",
                                          "<｜tool▁outputs▁end｜>", "<｜tool▁output▁begin｜>",
                                          "<｜tool▁output▁end｜>"), "<｜end▁of▁sentence｜>"),
}

# The token a family's tokenizer puts first (its GGUF's BOS with add_bos_token); None: it puts
# none (Qwen and gpt-oss), so the template alone decides how a prompt begins.
BEGIN_OF_TEXT: dict[str, str | None] = {
    "hermes": None, "qwen3": None, "qwen3-coder": None, "llama3.1": "<|begin_of_text|>",
    "mistral": "<s>", "mistral-v11": "<s>", "gpt-oss": None, "deepseek-r1": "<｜begin▁of▁sentence｜>",
}
